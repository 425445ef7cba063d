"""A full disk (ENOSPC) or quota (EDQUOT), without one: writes that fail as the kernel makes them fail, and what the
writers and the command line make of it (one line naming the folder, exit code 2, no half-written file, a rerun
after freeing space finishes). Also the other properties of the atomic writers: the umask, reproducible safetensors.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3

import pytest
import torch
from PIL import Image

from cli_run import run_cli
from idportrait.errors import DiskFullError, UserError, find_disk_full, writing_into
from idportrait.imageio import append_lines, save_image, write_bytes, write_json, write_safetensors

REAL_FSYNC = os.fsync


def fail_fsync(monkeypatch, code: int = errno.ENOSPC, when=lambda path: True) -> list[str]:
    """Make ``os.fsync`` raise ``code`` for files whose path ``when`` accepts (where NFS and full disks often
    report it); returns the paths it failed."""
    real, failed = os.fsync, []

    def fsync(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        if when(path):
            failed.append(path)
            raise OSError(code, os.strerror(code))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return failed


@pytest.mark.parametrize(("code", "cause"), [(errno.ENOSPC, "no space left on the device"),
                                             (errno.EDQUOT, "disk quota exceeded")])  # fmt: skip
def test_a_full_disk_names_the_folder_and_the_size_and_leaves_nothing(tmp_path, monkeypatch, code, cause):
    fail_fsync(monkeypatch, code)
    out = tmp_path / "out"
    with pytest.raises(DiskFullError) as full:
        write_bytes(out / "image.png", b"x" * 1500)
    message = str(full.value)
    assert message.startswith(f"{out}: {cause} (writing image.png needs 1.5 KB, ") and " free)" in message
    assert "\n" not in message and list(out.iterdir()) == []


def fail_create(monkeypatch, code: int) -> None:
    """Make creating the writers' temporary files fail with ``code`` (no inode left, a read-only filesystem)."""
    real_open = os.open

    def create(path, flags, mode=0o777, **kwargs):
        if str(path).endswith(".tmp"):
            raise OSError(code, os.strerror(code), str(path))
        return real_open(path, flags, mode, **kwargs)

    monkeypatch.setattr(os, "open", create)


def test_running_out_when_the_file_is_created_is_the_same_error(tmp_path, monkeypatch):
    fail_create(monkeypatch, errno.ENOSPC)
    with pytest.raises(DiskFullError, match=f"{tmp_path}: no space left on the device"):
        write_json(tmp_path / "settings.json", {"a": 1})


def test_an_append_that_finds_the_disk_full_is_cut_back_off(tmp_path, monkeypatch):
    log = tmp_path / "records.jsonl"
    log.write_text('{"key": 1}\n{"key": 2, "cut sh')  # a line torn by an earlier crash
    append_lines(log, '{"key": 3}\n')
    assert log.read_text().splitlines()[-1] == '{"key": 3}'  # after a newline: the torn line swallows nothing
    before = log.read_bytes()
    fail_fsync(monkeypatch)
    with pytest.raises(DiskFullError, match=f"{tmp_path}: no space left on the device \\(writing records.jsonl"):
        append_lines(log, '{"key": 4}\n')
    assert log.read_bytes() == before


def test_a_read_only_output_folder_is_one_line(tmp_path, monkeypatch):
    fail_create(monkeypatch, errno.EROFS)
    with pytest.raises(UserError, match=f"^{tmp_path}: cannot write faces.json here \\(Read-only file system\\)"):
        write_json(tmp_path / "faces.json", [])
    assert list(tmp_path.iterdir()) == []


def test_disk_full_is_found_however_a_library_wraps_it():
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as err:
            raise RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed") from err
    except RuntimeError as wrapped:
        assert isinstance(find_disk_full(wrapped), OSError)
    assert find_disk_full(sqlite3.OperationalError("database or disk is full")) is not None
    assert find_disk_full(OSError(errno.EDQUOT, "")) is not None
    assert find_disk_full(OSError(errno.EACCES, "Permission denied")) is None
    assert find_disk_full(ValueError("no space between words")) is None


def test_a_library_write_that_names_no_file_is_named_by_its_folder(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    full = pytest.raises(DiskFullError, match=f"^{models}: no space left on the device \\(writing models, ")
    with full, writing_into(models):
        raise RuntimeError("Error while serializing: IoError(Os { code: 28, message: No space left on device })")
    with pytest.raises(KeyError), writing_into(models):
        raise KeyError("not a disk")


def test_outputs_respect_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        save_image(tmp_path / "a.png", Image.new("RGB", (4, 4)))
        write_json(tmp_path / "a.json", {})
        os.umask(0o027)
        write_safetensors(tmp_path / "a.safetensors", {"w": torch.zeros(2)})
    finally:
        os.umask(previous)
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert modes == {"a.png": 0o644, "a.json": 0o644, "a.safetensors": 0o640}


def test_safetensors_are_byte_reproducible_with_sorted_metadata(tmp_path):
    from safetensors import safe_open

    tensors = {"b.weight": torch.arange(6.0).reshape(2, 3), "a.bias": torch.ones(3, dtype=torch.float16)}
    metadata = {k: str(i) for i, k in enumerate(["zeta", "format", "alpha", "num_tokens", "mid", "source"])}
    files = [write_safetensors(tmp_path / f"{k}.safetensors", tensors, metadata) for k in range(6)]
    data = files[0].read_bytes()
    assert all(f.read_bytes() == data for f in files[1:])
    header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
    assert list(header["__metadata__"]) == sorted(metadata)
    with safe_open(files[0], "pt") as f:
        assert f.metadata() == metadata
        assert all(torch.equal(f.get_tensor(k), v) for k, v in tensors.items())


class ColourMethod:
    """A method without models: each image is coloured by its seed."""

    multi_reference = False

    def prepare(self, reference, source: str = "<image>"):
        return 0

    def generate(self, prepared, prompts, seeds, **options):
        return [Image.new("RGB", (8, 8), (s, 0, 0)) for _ in prompts for s in seeds]


def error_lines(err: str) -> list[str]:
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith("error:")]


def test_generate_batch_on_a_full_disk_then_after_freeing_space(tmp_path, monkeypatch, capsys):
    import idportrait.methods

    monkeypatch.setattr(idportrait.methods, "load_method", lambda *args, **kwargs: ColourMethod())
    faces, out = tmp_path / "faces", tmp_path / "out"
    faces.mkdir()
    Image.new("RGB", (16, 16)).save(faces / "ana.png")
    args = ["generate-batch", "--faces", str(faces), "-p", "a", "-p", "b", "--n", "2", "--method", "plain-sd",
            "--device", "cpu", "--out", str(out)]  # fmt: skip
    failed = fail_fsync(monkeypatch, when=lambda path: "001_00.png" in path)  # the 3rd image finds the disk full
    code, _, err = run_cli(monkeypatch, capsys, *args)
    (line,) = error_lines(err)
    assert code == 2 and failed and line.startswith(f"error: {out / 'ana'}: no space left on the device (writing")
    assert sorted(p.name for p in (out / "ana").iterdir()) == ["000_00.png", "000_01.png"]  # nothing half-written

    monkeypatch.setattr(os, "fsync", REAL_FSYNC)  # space freed
    code, _, err = run_cli(monkeypatch, capsys, *args)
    assert code == 0 and "2 images written, 2 already there" in err, err
    images = json.loads((out / "settings.json").read_text())["images"]
    assert images == [f"ana/{i:03d}_{k:02d}.png" for i in range(2) for k in range(2)]


def test_curate_on_a_full_disk(tmp_path, monkeypatch, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from fsspec.implementations.local import LocalFileOpener

    (tmp_path / "in").mkdir()
    pq.write_table(
        pa.Table.from_pylist([{"key": "a-0", "caption": "Portrait of a woman"}]), tmp_path / "in" / "a.parquet"
    )

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(LocalFileOpener, "write", full)
    out = tmp_path / "out"
    code, _, err = run_cli(monkeypatch, capsys, "curate", "run", str(tmp_path / "in"), "--out", str(out),
                           "--detector", "dlib")  # fmt: skip
    (line,) = error_lines(err)
    assert code == 2 and line.startswith(f"error: {out}") and "no space left on the device" in line, err
    assert not [p for p in out.rglob("*") if p.is_file()]


def test_a_full_disk_raised_anywhere_in_a_command_is_one_line(tmp_path, monkeypatch, capsys):
    """Raised by a library that keeps only the message (sqlite here), not by our writers."""
    import idportrait.imageio

    def full(path, obj):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(idportrait.imageio, "write_json", full)
    Image.new("RGB", (32, 32)).save(tmp_path / "photo.png")
    code, _, err = run_cli(monkeypatch, capsys, "faces", "detect", str(tmp_path / "photo.png"), "--analyzer", "dlib",
                           "--out", str(tmp_path / "faces"))  # fmt: skip
    assert code == 2 and error_lines(err) == ["error: no space left on the device while writing the outputs; "
                                              "free some space and rerun"]  # fmt: skip


def test_a_user_error_raised_in_a_ray_task_is_its_own_one_line(tmp_path, monkeypatch, capsys):
    """Ray re-raises a task's exception as a subclass of both its error and the task's class, with the whole remote
    traceback as its text; the task's own line is what the user sees."""
    from ray.exceptions import RayTaskError

    import idportrait.curate.command

    def remote_failure(*args, **kwargs):
        try:
            raise DiskFullError(f"{tmp_path}/out/shards: no space left on the device")
        except DiskFullError as err:
            wrapped = RayTaskError("_Detect.__call__", "Traceback (most recent call last):\n  ...", err)
            raise wrapped.as_instanceof_cause() from err

    monkeypatch.setattr(idportrait.curate.command, "StageOptions", remote_failure)
    code, _, err = run_cli(monkeypatch, capsys, "curate", "run", str(tmp_path), "--out", str(tmp_path / "out"))
    assert code == 2 and error_lines(err) == [f"error: {tmp_path}/out/shards: no space left on the device"]
