"""FaceID-6M curation: LAION-style shards in, FaceID webdataset shards + parquet index out.

    settings.prepare_output -> readers.read_shard
        -> cascade.curate_batch (text_stage, then image_stage on survivors)
        -> writer.ShardWriter -> stats last (runner.curate_shard, one shard = one unit;
           an unreadable shard -> failures/<name>.json, the run goes on)

- `filters`: the pure filters ``(sample, config) -> Decision`` in cascade order, reasons in `reasons`;
- `normalise` (caption text for the models), `language` (input column, script, CLD2, word evidence),
  `keywords` (shipped word lists, one regex; credit lines), `ner` (spaCy en_core_web_md PERSON);
- `runner.run_local` (processes that die with the run, `lifeline`) and `ray_runner.run_ray` (Ray Data)
  over the same `curate_shard`; `settings` (resume only under the same settings);
- `report` (funnel table, per-step counts, failures, histograms), `sample` (the bundled sample),
  `img2dataset_stage` (downloads).
"""
