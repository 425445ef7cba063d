"""FGID annotation: face parsing masks, ArcFace embedding, VLM captions and marked facial captions per photo."""
