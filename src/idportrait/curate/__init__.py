"""FaceID-6M curation: LAION-style shards in, FaceID webdataset shards + parquet index out.

    readers.read_shard -> cascade.curate_batch (text_stage, then image_stage on survivors)
                       -> writer.ShardWriter -> stats last (runner.process_shard, one shard = one unit)

- `filters`: the pure filters ``(sample, config) -> Decision`` in cascade order, reasons in `reasons`;
- `language` (CLD2), `keywords` (shipped word lists, one regex), `ner` (spaCy en_core_web_md PERSON);
- `runner.run_local` (processes) and `ray_runner.run_ray` (Ray Data) over the same `process_shard`;
- `report` (funnel table, histograms), `sample` (the bundled sample), `img2dataset_stage` (downloads).
"""
