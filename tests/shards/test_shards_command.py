"""`idportrait index`: index files for shards that have none, in one pass; corrupt input is one error line."""

from __future__ import annotations

from shard_files import faceid_members

from cli_run import run_cli
from idportrait.shards.index_file import index_file_count, index_file_path
from plain_tar import write_plain_tar


def run(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``idportrait index ARGS...`` in this process, never with a traceback."""
    code, out, err = run_cli(monkeypatch, capsys, "index", *args)
    assert "Traceback" not in err
    return code, out, err


def test_index_writes_missing_index_files_once(monkeypatch, capsys, tmp_path):
    for s in range(2):
        members = [(f"{s}-{i}.{ext}", data) for i in range(3)
                   for ext, data in zip(("jpg", "txt", "json"), faceid_members(i).values(), strict=True)]  # fmt: skip
        write_plain_tar(tmp_path / f"shard-{s}.tar", members)
    code, out, _ = run(monkeypatch, capsys, str(tmp_path))
    assert code == 0 and "6 samples in 2 files; 2 index files written, 0 already up to date" in out
    for s in range(2):
        shard = tmp_path / f"shard-{s}.tar"
        assert index_file_count(index_file_path(str(shard)), "tar", shard.stat().st_size) == 3
    code, out, _ = run(monkeypatch, capsys, str(tmp_path / "shard-0.tar"), str(tmp_path / "shard-1.tar"))
    assert code == 0 and "0 index files written, 2 already up to date" in out
    code, out, _ = run(monkeypatch, capsys, "--force", str(tmp_path / "shard-1.tar"))
    assert code == 0 and "1 index files written" in out

    (tmp_path / "records.jsonl").write_text('{"a": 1}\n{"b": 2}\n')
    code, out, _ = run(monkeypatch, capsys, "--lines", str(tmp_path))
    assert code == 0 and "2 samples in 1 files; 1 index files written" in out


def test_index_refuses_a_corrupt_shard_in_one_line(monkeypatch, capsys, tmp_path):
    (tmp_path / "bad.tar").write_bytes(b"\x00\x01not a tar" * 100)
    code, _, err = run(monkeypatch, capsys, str(tmp_path / "bad.tar"))
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "bad.tar: not a readable tar shard" in lines[0]
    code, _, err = run(monkeypatch, capsys, str(tmp_path / "absent"))
    assert code == 2 and "absent: not found, or not a file or folder" in err
