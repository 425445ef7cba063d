"""The papers' evaluation suite: CLIP-T, CLIP-I, DINO, FaceSim (FaceNet / ArcFace), FGIS, FID, speed.

Metrics (one small module each): `clip_score`, `dino`, `facesim` (+ `facenet`), `fgis`, `fid` (+ `inception`),
`speed`. Protocol: `prompts` (benchmark prompt sets), `config` (one file drives generate + score), `runner`
(generate, resumable, across launched processes), `score` (per-image rows), `report` (tables, plots, grids),
`command` (CLI).
Conventions and the published numbers each metric compares with: docs/evaluation.md.
"""
