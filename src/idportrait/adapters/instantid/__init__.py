"""InstantID: IdentityNet (a ControlNet on the 5-keypoint image, conditioned on face tokens only) and the
face-embedding Resampler + decoupled attention of ``ip-adapter.bin`` (released ``InstantX/InstantID``)."""
