"""Default model ids: the one place where real models are named (and the release demos' negative prompt).

Everything else refers to these constants; tests never load them (they build tiny models,
save them to a temp dir and pass the local path instead).
"""

from __future__ import annotations

# --- ConsistentID release -------------------------------------------------------------------
CONSISTENTID_REPO = "JackAILab/ConsistentID"
CONSISTENTID_SD15_FILE = "ConsistentID-v1.bin"
CONSISTENTID_SDXL_FILE = "ConsistentID_SDXL-v1.bin"
FACE_PARSING_FILE = "face_parsing.pth"  # BiSeNet, identical to face-parsing.PyTorch 79999_iter.pth

# --- Base models ------------------------------------------------------------------------------
SD15_BASE = "SG161222/Realistic_Vision_V6.0_B1_noVAE"  # the ConsistentID release demos' base
SD15_VAE = "stabilityai/sd-vae-ft-mse"  # the noVAE base needs an external VAE
SD15_REFERENCE_BASE = "stable-diffusion-v1-5/stable-diffusion-v1-5"
SDXL_BASE = "stabilityai/stable-diffusion-xl-base-1.0"

# --- Encoders -------------------------------------------------------------------------------
CLIP_VIT_H = "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"  # region/whole-photo image encoder
CLIP_VIT_L = "openai/clip-vit-large-patch14"  # SD1.5 text encoder family

# --- Evaluation (docs/evaluation.md says why these) --------------------------------------------
CLIP_EVAL = "openai/clip-vit-base-patch32"  # CLIP-T / CLIP-I: the ViT-B/32 of FastComposer/PhotoMaker evals
DINO_VIT_S16 = "facebook/dino-vits16"  # DINO / FGIS evaluation
FACENET_VGGFACE2_URL = (  # FaceSim (ConsistentID/PhotoMaker): facenet-pytorch InceptionResnetV1, VGGFace2
    "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180402-114759-vggface2.pt"
)
FID_INCEPTION_URL = (  # FID: the TF Inception-v3 (2015-12-05) of pytorch-fid / torch-fidelity, pool3 features
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"
)

# --- Face analysis (insightface model zoo pack names) ----------------------------------------
INSIGHTFACE_CONSISTENTID = "buffalo_l"  # ConsistentID, IP-Adapter-FaceID
INSIGHTFACE_FACEID6M = "antelopev2"  # FaceID-6M curation, InstantID
FACE_BACKEND_CONSISTENTID = f"insightface:{INSIGHTFACE_CONSISTENTID}"  # their `idportrait.faces` analyzer names
FACE_BACKEND_FACEID6M = f"insightface:{INSIGHTFACE_FACEID6M}"

# --- Other methods ---------------------------------------------------------------------------
IP_ADAPTER_FACEID_REPO = "h94/IP-Adapter-FaceID"
IP_ADAPTER_FACEID_FILES = {  # (variant, sdxl) -> file in IP_ADAPTER_FACEID_REPO
    ("faceid", False): "ip-adapter-faceid_sd15.bin",
    ("faceid", True): "ip-adapter-faceid_sdxl.bin",
    ("faceid-plus", False): "ip-adapter-faceid-plus_sd15.bin",
    ("faceid-plusv2", False): "ip-adapter-faceid-plusv2_sd15.bin",
    ("faceid-plusv2", True): "ip-adapter-faceid-plusv2_sdxl.bin",
}
INSTANTID_ADAPTER_FILE = "ip-adapter.bin"  # in INSTANTID_REPO
INSTANTID_CONTROLNET_SUBFOLDER = "ControlNetModel"  # IdentityNet in INSTANTID_REPO and in `train instantid` output
INSTANTID_REPO = "InstantX/InstantID"

# --- ControlNets (`--controlnet NAME`; any other value is a hub id or a local folder) ---------------
CONTROLNETS = {  # (name, sdxl) -> hub id; SD1.5: the ConsistentID release demos' ControlNet 1.1 family
    ("canny", False): "lllyasviel/control_v11p_sd15_canny",
    ("openpose", False): "lllyasviel/control_v11p_sd15_openpose",
    ("inpaint", False): "lllyasviel/control_v11p_sd15_inpaint",
    ("canny", True): "diffusers/controlnet-canny-sdxl-1.0",
    ("openpose", True): "thibaud/controlnet-openpose-sdxl-1.0",
}

# --- Release demo defaults -------------------------------------------------------------------
DEFAULT_NEGATIVE_PROMPT = "monochrome, lowres, bad anatomy, worst quality, low quality, blurry"  # ConsistentID, FaceID
CONSISTENTID_GUIDANCE = 5.0  # classifier-free guidance of the SD1.5 release demos
CONSISTENTID_SDXL_GUIDANCE = 7.5  # the SDXL release pipeline's default


def default_guidance(method: str) -> float:
    """``--guidance`` default of a method without an accelerator: 7.5 for ``consistentid-sdxl``, else 5.0."""
    return CONSISTENTID_SDXL_GUIDANCE if method == "consistentid-sdxl" else CONSISTENTID_GUIDANCE


# --- Few-step accelerators (LoRAs loaded with diffusers' load_lora_weights) ----------------------
ACCELERATOR_LORAS = {  # (accelerator, sdxl) -> (hub repo, file)
    ("lcm", False): ("latent-consistency/lcm-lora-sdv1-5", "pytorch_lora_weights.safetensors"),
    ("lcm", True): ("latent-consistency/lcm-lora-sdxl", "pytorch_lora_weights.safetensors"),
    ("hyper-sd", False): ("ByteDance/Hyper-SD", "Hyper-SD15-4steps-lora.safetensors"),
    ("hyper-sd", True): ("ByteDance/Hyper-SD", "Hyper-SDXL-4steps-lora.safetensors"),
    ("tcd", False): ("h1t/TCD-SD15-LoRA", "pytorch_lora_weights.safetensors"),
    ("tcd", True): ("h1t/TCD-SDXL-LoRA", "pytorch_lora_weights.safetensors"),
}

# --- Captioning -----------------------------------------------------------------------------
LLAVA = "llava-hf/llava-1.5-7b-hf"
