"""Captions from a LLaVA-1.5 model through transformers (``llava-hf/llava-1.5-7b-hf`` by default).

Greedy decoding (temperature 0, as the FGID captions were made), up to ``max_new_tokens`` new tokens. The
prompt goes through the processor's chat template ("USER: <image>\\n{prompt} ASSISTANT:").
``load_in_4bit`` quantises the language model with bitsandbytes NF4 and needs CUDA and the bitsandbytes
package (not a dependency of idportrait: ``pip install bitsandbytes``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from idportrait.errors import UserError
from idportrait.hub import fetch


@dataclass
class Captioner:
    """A loaded VLM: ``caption(image, prompt) -> str``."""

    model: Any
    processor: Any
    name: str
    max_new_tokens: int = 512

    @torch.no_grad()
    def caption(self, image: Image.Image, prompt: str) -> str:
        """One greedy caption of an RGB image for ``prompt`` (special tokens and whitespace stripped)."""
        conversation = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
        text = self.processor.apply_chat_template(conversation, add_generation_prompt=True)
        inputs = self.processor(images=image, text=text, return_tensors="pt").to(self.model.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
        new_tokens = out[0, inputs["input_ids"].shape[1] :]
        return self.processor.decode(new_tokens, skip_special_tokens=True).strip()


def load_captioner(
    name: str,
    device: str = "cpu",
    dtype: torch.dtype | None = None,
    load_in_4bit: bool = False,
    max_new_tokens: int = 512,
) -> Captioner:
    """``LlavaForConditionalGeneration`` + ``AutoProcessor`` from a hub id or local folder."""
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    kwargs: dict[str, Any] = {"dtype": dtype or (torch.float16 if device.startswith("cuda") else torch.float32)}
    if load_in_4bit:
        if not (device.startswith("cuda") and torch.cuda.is_available()):
            raise UserError("--load-in-4bit needs a CUDA device (bitsandbytes quantisation)")
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=kwargs["dtype"]
        )
        kwargs["device_map"] = {"": device}
    processor, model = fetch(
        "captioning model",
        name,
        "--vlm",
        lambda local: (
            AutoProcessor.from_pretrained(name, local_files_only=local),
            LlavaForConditionalGeneration.from_pretrained(name, local_files_only=local, **kwargs),
        ),
    )
    if not load_in_4bit:
        model.to(device)
    return Captioner(model.eval(), processor, name, max_new_tokens)
