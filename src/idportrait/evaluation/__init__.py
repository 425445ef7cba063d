"""The papers' evaluation suite: CLIP-T, CLIP-I, DINO, FaceSim (FaceNet / ArcFace), FGIS, FID, speed.

Metrics (one small module each): `clip_score`, `dino`, `facesim` (+ `facenet`), `fgis`, `fid` (+ `inception`),
`speed`. Protocol: `prompts` (benchmark prompt sets), `config` (one file drives generate + score), `runner`
(generate, resumable, across launched processes), `score` (per-image rows), `report` (tables, plots, grids),
`command` (CLI).
Human study: `rating_items` (which images), `rating_sample` (balanced sample, per-rater order), `rating_db`
(the SQLite file), `rating_app` (the page), `agreement` (Krippendorff's alpha), `human` (the numbers).
Conventions and the published numbers each metric compares with: docs/evaluation.md.
"""
