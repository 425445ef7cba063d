"""ConsistentID: FacialEncoder, ID projector, LoRA + decoupled-ID attention processors, text, checkpoints."""
