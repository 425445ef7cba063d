"""Training: objectives (ConsistentID, IP-Adapter-FaceID), losses, data and the accelerate loop."""
