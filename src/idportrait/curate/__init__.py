"""FaceID-6M curation: LAION-style shards in, FaceID webdataset shards + parquet index out.

    runner.plan_run (settings and inputs of --out: the same, or --overwrite) -> for each unfinished shard:
        readers.read_shard -> cascade.text_stage -> download.download_stage -> cascade.check_decoded
        -> cascade.detect_stage (batched) -> results.ShardResult (writer.ShardWriter, stats last)
        an unreadable shard -> failures/<name>.json, and the run goes on

- `filters`: the pure filters ``(sample, config) -> Decision`` in cascade order, reasons in `reasons`;
- `normalise` (caption text for the models), `language` (input column, script, CLD2, word evidence),
  `keywords` (shipped word lists, one regex; credit lines), `ner` (spaCy en_core_web_md PERSON);
- `download` (deadline, retries, per-host cap, named failures), `detect` (batched face analysis on a device);
- `pipeline.stream_shards` (the stages overlapping in one process, bounded queues), `runner.run_local`
  (one process, or a pool whose workers die with the run, `lifeline`) and `ray_runner.run_ray` (the same
  stages as a Ray Data stream, each scaled on its own); `options` (how stages run), `settings` (what a
  folder was curated from and with);
- `report` (funnel table, failed downloads by cause, per-step counts, failures, histograms), `sample` (the
  bundled sample), `img2dataset_stage` (text stage, then img2dataset downloads).
"""
