"""The FaceID shard format, in one place: curation writes it, annotation and training read it.

layout.py      member names of a sample and its JSON record
files.py       atomic writes and range reads through fsspec (local paths or object storage)
writer.py      a tar shard written together with its index file (each sample's member offsets and sizes)
index_file.py  one source's index file: 40 bytes per sample, built from a tar's headers or a file's lines
index.py       the memory-mapped index of a whole dataset that every rank and worker shares; its fingerprint
reader.py      one sample read when it is asked for (`FaceIDSamples`)
faceid6m.py    the released FaceID-6M / FaceID-70K JSON lines read as the same samples
command.py     `idportrait index`: index files for shards that have none (older output, img2dataset)
"""
