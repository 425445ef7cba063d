"""Identity adapters that plug into a Stable Diffusion UNet (ConsistentID, ...)."""
