"""Diffusers pipelines that condition Stable Diffusion on a reference face (ConsistentID SD1.5)."""
