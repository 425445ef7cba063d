"""InstantID on an SDXL base, as a diffusers pipeline.

    identitynet = ControlNetModel.from_pretrained("InstantX/InstantID", subfolder="ControlNetModel")
    pipe = InstantIDPipeline.from_pretrained(sdxl_base, controlnet=identitynet)
    pipe.load_instantid("path/to/ip-adapter.bin")            # Resampler + decoupled attention (strict check)
    images = pipe("a photo of a person", face_embedding=emb, kps_image=draw_kps(size, kps)).images

Data flow of one call::

    face embedding [512] -> Resampler (diffusers IPAdapterPlusImageProjection)      face tokens [B, 16, 2048]
                           (zeros -> the unconditional face tokens for CFG)
    prompt -> both text encoders (SDXL)                                          text [B, 77, 2048] + pooled
    each step: IdentityNet(latents, t, encoder_hidden_states = face tokens only, control = keypoint image)
                 -> residuals x controlnet_conditioning_scale
               UNet(latents, t, text, residuals, image_embeds -> decoupled attention x ip_adapter_scale)

With both scales 0 the result is the base SDXL pipeline's, exactly.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import StableDiffusionXLControlNetPipeline
from diffusers.pipelines.stable_diffusion_xl import StableDiffusionXLPipelineOutput
from PIL import Image

from idportrait.adapters.instantid.checkpoint import check_instantid_checkpoint, load_instantid_checkpoint
from idportrait.pipelines.common import decode_sdxl, denoise, sdxl_time_ids


class InstantIDPipeline(StableDiffusionXLControlNetPipeline):
    """SDXL + IdentityNet (the ``controlnet``) + InstantID's face adapter."""

    def load_instantid(self, path: str | Path) -> None:
        """Check ``ip-adapter.bin`` against this UNet (strict) and load it with diffusers' ``load_ip_adapter``."""
        state = load_instantid_checkpoint(path)
        check_instantid_checkpoint(state, self.unet, path)
        self.load_ip_adapter(state, subfolder="", weight_name="", image_encoder_folder=None, low_cpu_mem_usage=False)

    def face_tokens(self, face_embedding: torch.Tensor) -> torch.Tensor:
        """Face embeddings [N, 512] -> face tokens [N, 16, 2048] (the Resampler; zeros give the uncond tokens).

        Computed where the Resampler's weights are (the CPU under ``enable_model_cpu_offload``).
        """
        resampler = self.unet.encoder_hid_proj.image_projection_layers[0]
        weight = next(resampler.parameters())
        return resampler(face_embedding[:, None].to(weight.device, weight.dtype))

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str],
        face_embedding: torch.Tensor,
        kps_image: Image.Image,
        negative_prompt: str | list[str] | None = None,
        num_images_per_prompt: int = 1,
        generator: torch.Generator | list[torch.Generator] | None = None,
        num_inference_steps: int = 30,
        guidance_scale: float = 5.0,
        ip_adapter_scale: float = 0.8,
        controlnet_conditioning_scale: float = 0.8,
        latents: torch.Tensor | None = None,
        output_type: str = "pil",
    ) -> StableDiffusionXLPipelineOutput:
        """``len(prompts) * num_images_per_prompt`` images, prompt-major, at the keypoint image's size.

        face_embedding: [512] (or [1, 512]) normed ArcFace embedding (antelopev2 for the released weights).
        """
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        width, height = kps_image.size
        device, dtype = self._execution_device, self.unet.dtype
        batch = len(prompts) * num_images_per_prompt
        do_cfg = guidance_scale > 1.0

        # 1. text (SDXL's own encoding) and face tokens
        text, negative, pooled, negative_pooled = self.encode_prompt(
            prompts,
            device=device,
            num_images_per_prompt=num_images_per_prompt,
            do_classifier_free_guidance=do_cfg,
            negative_prompt=negative_prompt,
        )
        face = face_embedding.reshape(1, -1).float()
        raw = face.expand(batch, -1)
        if do_cfg:
            text, pooled = torch.cat([negative, text]), torch.cat([negative_pooled, pooled])
            raw = torch.cat([torch.zeros_like(raw), raw])
        raw = raw.to(device, dtype)
        tokens = self.face_tokens(raw).to(device)
        time_ids = sdxl_time_ids(self, height, width, dtype, device)
        added = {"text_embeds": pooled, "time_ids": time_ids.repeat(text.shape[0], 1)}
        self.set_ip_adapter_scale(ip_adapter_scale)

        # 2. control image
        control = self.prepare_image(
            kps_image,
            width=width,
            height=height,
            batch_size=batch,
            num_images_per_prompt=1,
            device=device,
            dtype=self.controlnet.dtype,
            do_classifier_free_guidance=do_cfg,
        )

        # 3. denoising: IdentityNet sees the face tokens only, the UNet the text (+ face via its IP attention)
        def predict_noise(t: torch.Tensor, model_in: torch.Tensor) -> torch.Tensor:
            down, mid = self.controlnet(
                model_in,
                t,
                encoder_hidden_states=tokens,
                controlnet_cond=control,
                conditioning_scale=controlnet_conditioning_scale,
                added_cond_kwargs=added,
                return_dict=False,
            )
            return self.unet(
                model_in,
                t,
                encoder_hidden_states=text,
                added_cond_kwargs={**added, "image_embeds": [raw[:, None, None]]},
                down_block_additional_residuals=down,
                mid_block_additional_residual=mid,
            ).sample

        size = (batch, height, width)
        latents = denoise(self, predict_noise, size, device, num_inference_steps, guidance_scale, generator, latents)

        # 4. decode
        return decode_sdxl(self, latents, output_type)
