"""The human study without a browser: which images, the balanced sample, rater orders, the ratings file."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from idportrait.errors import UserError
from idportrait.evaluation.rating_db import APPLICATION_ID, StudyImage, open_existing, open_study
from idportrait.evaluation.rating_items import collect_items
from idportrait.evaluation.rating_sample import balanced_sample, rater_order
from idportrait.evaluation.records import MANIFEST, Record
from idportrait.generate.batch import save_with_seed

SETTINGS = {"seed": "0", "sample": "all"}


def make_study_folders(root: Path, methods=("consistentid", "plain-sd"), people=("ana", "bo"), prompts=3):
    """``generated/<method>/<identity>/<i>_00.png`` with generate-batch metadata, and ``refs/<identity>.png``."""
    refs = root / "refs"
    refs.mkdir(parents=True)
    for k, who in enumerate(people):
        Image.new("RGB", (32, 32), (40 * k, 90, 200)).save(refs / f"{who}.png")
    for m, method in enumerate(methods):
        for who in people:
            for i in range(prompts):
                image = Image.new("RGB", (32, 32), (60 * m, 20 * i, 120))
                path = root / "generated" / method / who / f"{i:03d}_00.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                save_with_seed(path, image, i, prompt=f"a photo of {who} number {i}", method=method, references=[])
    return root / "generated", refs


def test_items_from_method_folders_batch_outputs_and_run_manifests(tmp_path):
    generated, refs = make_study_folders(tmp_path, methods=("faceid", "faceid-plusv2"), prompts=2)
    (generated / "plots").mkdir()
    Image.new("RGB", (8, 8)).save(generated / "plots" / "clip_t.png")  # a report beside the images: not an item
    items = collect_items(generated, refs)
    assert [i.study.image for i in items][:2] == ["faceid-plusv2/ana/000_00.png", "faceid-plusv2/ana/001_00.png"]
    assert Counter(i.study.method for i in items) == {"faceid": 4, "faceid-plusv2": 4}  # folder names tell variants
    assert items[0].study.prompt == "a photo of ana number 0" and items[0].reference == refs / "ana.png"

    single = collect_items(generated / "faceid", refs)  # one generate-batch output: method from the PNG
    assert {i.study.method for i in single} == {"faceid"} and len(single) == 4

    run = tmp_path / "run"
    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    (run / "images/m/ana").mkdir(parents=True)
    (tmp_path / "x.png").rename(run / "images/m/ana/p000_s0.png")
    record = Record("m", "ana", 0, "style", "a woman in a hat", 0, "images/m/ana/p000_s0.png")
    (run / MANIFEST).write_text(json.dumps(record.__dict__) + "\n")
    (item,) = collect_items(run, refs)
    assert (item.study.method, item.study.prompt, item.path) == ("m", "a woman in a hat", run / record.path)

    broken = generated / "faceid" / "ana" / "001_00.png"
    broken.write_bytes(broken.read_bytes()[:60])
    with pytest.raises(UserError, match=r"001_00\.png: not a readable image"):
        collect_items(generated, refs)
    (refs / "bo.png").unlink()
    with pytest.raises(UserError, match="no reference photo for identities bo"):
        collect_items(generated, refs)


def test_balanced_sample_across_methods_and_identities(tmp_path):
    generated, refs = make_study_folders(tmp_path, methods=("a", "b", "c"), people=("p", "q"), prompts=5)
    items = collect_items(generated, refs)
    sample = balanced_sample(items, 11, seed=3)
    assert len(sample) == 11 and sample == sorted(sample, key=lambda i: i.study.image)
    per_method = Counter(i.study.method for i in sample)
    assert sorted(per_method.values()) == [3, 4, 4]
    for method in per_method:
        per_person = Counter(i.study.identity for i in sample if i.study.method == method)
        assert max(per_person.values()) - min(per_person.values()) <= 1
    assert balanced_sample(items, 11, seed=3) == sample
    assert balanced_sample(items, 11, seed=4) != sample
    with pytest.raises(UserError, match="--sample 31 asks for more images than there are"):
        balanced_sample(items, 31, seed=0)


def test_rater_order_is_a_reproducible_permutation_per_rater():
    ana = rater_order(50, "ana", seed=0)
    assert sorted(ana) == list(range(50))
    assert rater_order(50, "ana", seed=0) == ana
    assert rater_order(50, "bo", seed=0) != ana and rater_order(50, "ana", seed=1) != ana


def test_ratings_are_upserted_with_timestamps_in_wal_mode(tmp_path):
    generated, refs = make_study_folders(tmp_path, prompts=1)
    images = [i.study for i in collect_items(generated, refs)]
    db = open_study(tmp_path / "ratings.sqlite", images, SETTINGS)
    assert not list(tmp_path.glob(".ratings.sqlite*"))  # built aside and moved into place
    image = images[0].image
    db.save("ana", image, "prompt", 2)
    db.save("ana", image, "prompt", 4)  # a changed mind replaces the rating
    db.save("ana", image, "faceid", 0)
    db.save("bo", image, "prompt", 5)
    assert db.scores("ana", image) == {"prompt": 4, "faceid": 0} and db.completed("ana") == 0
    assert db.save("ana", image, "quality", 3) == {"prompt", "faceid"}  # what was there before this save
    assert db.completed("ana") == 1
    db.set_position("ana", 3)
    assert db.position("ana") == 3 and db.position("new rater") == 0
    with pytest.raises(ValueError):
        db.save("ana", image, "prompt", 6)

    con = sqlite3.connect(tmp_path / "ratings.sqlite")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    rows = con.execute("SELECT rater, criterion, score, rated_at FROM ratings ORDER BY rater, criterion").fetchall()
    con.close()
    expected = [("ana", "faceid", 0), ("ana", "prompt", 4), ("ana", "quality", 3), ("bo", "prompt", 5)]
    assert [r[:3] for r in rows] == expected
    assert all(r[3].endswith("+00:00") for r in rows)
    assert {r.method for r in db.ratings()} == {images[0].method}

    again = open_study(tmp_path / "ratings.sqlite", images, SETTINGS)  # the same study: reopened as is
    assert again.scores("ana", image)["prompt"] == 4
    with pytest.raises(UserError, match="holds another study"):
        open_study(tmp_path / "ratings.sqlite", images, {**SETTINGS, "seed": "1"})
    with pytest.raises(UserError, match="holds another study"):
        open_study(tmp_path / "ratings.sqlite", images[1:], SETTINGS)


def test_of_concurrent_saves_exactly_one_completes_the_image(tmp_path):
    generated, refs = make_study_folders(tmp_path, prompts=1)
    images = [i.study for i in collect_items(generated, refs)]
    db = open_study(tmp_path / "ratings.sqlite", images, SETTINGS)

    def save(rater: str, criterion: str, barrier: threading.Barrier) -> set[str]:
        barrier.wait()  # the three saves start together
        return db.save(rater, images[0].image, criterion, 1)

    for round_ in range(10):
        barrier = threading.Barrier(3)
        with ThreadPoolExecutor(3) as pool:
            befores = list(pool.map(save, [f"r{round_}"] * 3, ["prompt", "faceid", "quality"], [barrier] * 3))
        assert sorted(len(b) for b in befores) == [0, 1, 2]


def _foreign(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE notes (text TEXT)")
    con.execute("INSERT INTO notes VALUES ('mine')")
    con.commit()
    con.close()


def _newer(path: Path) -> None:
    open_study(path, [], SETTINGS)
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode = DELETE")
    con.execute("PRAGMA user_version = 7")
    con.commit()
    con.close()


def _truncated(path: Path) -> None:
    images = [StudyImage(f"m/p/{i:04d}.png", "m", "p", "a prompt " * 20) for i in range(400)]
    db = open_study(path, images, SETTINGS)
    for image in images:
        db.save("ana", image.image, "prompt", 3)
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.execute("PRAGMA journal_mode = DELETE")
    con.close()
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(bytes(range(256)) * 64), "not a readable ratings database"),
        (_foreign, "not an idportrait ratings database"),
        (_newer, "schema version 7"),
        (_truncated, "malformed|corrupt"),
    ],
    ids=["random-bytes", "foreign-sqlite", "newer-schema", "truncated"],
)
def test_corrupt_or_foreign_database_is_refused_and_left_untouched(tmp_path, make, message):
    path = tmp_path / "ratings.sqlite"
    make(path)
    before = path.read_bytes()
    with pytest.raises(UserError, match=message):
        open_study(path, [], SETTINGS)
    with pytest.raises(UserError, match=message):
        open_existing(path)
    assert path.read_bytes() == before
    assert not (tmp_path / "ratings.sqlite-wal").exists()


def test_cli_refuses_a_foreign_database_in_one_line(tmp_path):
    generated, refs = make_study_folders(tmp_path, prompts=1)
    path = tmp_path / "ratings.sqlite"
    _foreign(path)
    before = path.read_bytes()
    args = ["--generated", str(generated), "--references", str(refs), "--db", str(path)]
    for command in (["rate", *args], ["report", "--db", str(path), "--out", str(tmp_path / "out")]):
        result = subprocess.run(
            [sys.executable, "-m", "idportrait.cli", "evaluate", *command], capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
        assert "not an idportrait ratings database" in result.stderr and str(path) in result.stderr
    assert path.read_bytes() == before and not (tmp_path / "out").exists()


def test_a_new_study_on_a_read_only_filesystem_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    """What a read-only mount does to every write under it (EROFS; ``access(W_OK)`` false even for root), without
    needing one: the study is refused with one line naming the folder, and no file is left."""
    import errno
    import os

    folder = tmp_path / "ro"
    folder.mkdir()
    real_unlink, real_access, real_connect = Path.unlink, os.access, sqlite3.connect

    def read_only(path) -> bool:
        return Path(path).is_relative_to(folder)

    def unlink(self, missing_ok=False):
        if read_only(self):
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_unlink(self, missing_ok=missing_ok)

    def connect(path, *args, **kwargs):
        if read_only(path):
            raise sqlite3.OperationalError("unable to open database file")
        return real_connect(path, *args, **kwargs)

    monkeypatch.setattr(Path, "unlink", unlink)
    monkeypatch.setattr(os, "access", lambda path, mode: not read_only(path) and real_access(path, mode))
    monkeypatch.setattr(sqlite3, "connect", connect)
    images = [StudyImage("m/a/000_00.png", "m", "a", "a photo")]
    with pytest.raises(UserError) as refused:
        open_study(folder / "ratings.db", images, SETTINGS)
    message = str(refused.value)
    assert message.startswith(f"{folder / 'ratings.db'}: cannot create the ratings database here")
    assert f"{folder} is on a read-only filesystem or not writable" in message and "\n" not in message
    assert list(folder.iterdir()) == []
