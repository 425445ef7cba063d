"""idportrait: identity-preserving portrait generation (ConsistentID, IP-Adapter-FaceID, InstantID),
FaceID-6M dataset curation, FGID annotation, training and evaluation."""

__version__ = "0.1.0"
