"""The human study's SQLite file (stdlib sqlite3, WAL mode): the study's images and every rating.

    study    key -> value        the settings the image set was drawn with (seed, sample)
    items    position, image, method, identity, prompt      one row per image of the study
    ratings  rater, image, criterion, score 0-5, rated_at   one row per (rater, image, criterion), upserted
    raters   rater, position, updated_at                    where each rater is in their own order

Every write is its own short transaction, committed before the page answers, so a closed tab or a
killed server loses nothing. A file that is not ours (other ``application_id``/``user_version``,
other tables, corrupt) is refused with one line before anything is written into it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from idportrait.errors import UserError, disk_full_error, find_disk_full

APPLICATION_ID = 0x69645261  # "idRa"
SCHEMA_VERSION = 1
CRITERIA: dict[str, str] = {
    "prompt": "Prompt alignment",
    "faceid": "FaceID fidelity",
    "quality": "Image quality",
}
"""Criterion key -> label (FaceID-6M's user study), each rated 0-5."""
MAX_SCORE = 5

SCHEMA = f"""
CREATE TABLE study (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE items (
    position INTEGER PRIMARY KEY, image TEXT NOT NULL UNIQUE,
    method TEXT NOT NULL, identity TEXT NOT NULL, prompt TEXT NOT NULL);
CREATE TABLE ratings (
    rater TEXT NOT NULL, image TEXT NOT NULL REFERENCES items(image),
    criterion TEXT NOT NULL CHECK (criterion IN ({", ".join(f"'{c}'" for c in CRITERIA)})),
    score INTEGER NOT NULL CHECK (score BETWEEN 0 AND {MAX_SCORE}), rated_at TEXT NOT NULL,
    PRIMARY KEY (rater, image, criterion));
CREATE TABLE raters (rater TEXT PRIMARY KEY, position INTEGER NOT NULL, updated_at TEXT NOT NULL);
"""
TABLES = {"study", "items", "ratings", "raters"}


@dataclass(frozen=True)
class StudyImage:
    """One image of the study as stored: its key (path inside the generated folder) and what it shows."""

    image: str
    method: str
    identity: str
    prompt: str


@dataclass(frozen=True)
class Rating:
    """One stored rating, with the method of its image (for the report)."""

    rater: str
    image: str
    method: str
    criterion: str
    score: int


@dataclass(frozen=True)
class RatingDB:
    """A checked ratings file. Each call opens its own short connection (the page answers from threads)."""

    path: Path

    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """An autocommit connection (each statement is its own transaction)."""
        con = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        try:
            yield con
        finally:
            con.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that holds the write lock from its first read to its commit."""
        with self.connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def settings(self) -> dict[str, str]:
        with self.connect() as con:
            return dict(con.execute("SELECT key, value FROM study"))

    def images(self) -> list[StudyImage]:
        with self.connect() as con:
            rows = con.execute("SELECT image, method, identity, prompt FROM items ORDER BY position")
            return [StudyImage(*row) for row in rows]

    def save(self, rater: str, image: str, criterion: str, score: int) -> set[str]:
        """Insert or replace one rating, timestamped (UTC); returns the criteria of this image the rater had
        rated before, read in the same transaction (so of two concurrent saves exactly one completes an image)."""
        if criterion not in CRITERIA or not 0 <= score <= MAX_SCORE:
            raise ValueError(f"bad rating {criterion}={score}")
        with self.transaction() as con:
            rows = con.execute("SELECT criterion FROM ratings WHERE rater = ? AND image = ?", (rater, image))
            before = {row[0] for row in rows}
            con.execute(
                "INSERT INTO ratings VALUES (?, ?, ?, ?, ?) ON CONFLICT (rater, image, criterion) "
                "DO UPDATE SET score = excluded.score, rated_at = excluded.rated_at",
                (rater, image, criterion, int(score), _now()),
            )
        return before

    def scores(self, rater: str, image: str) -> dict[str, int]:
        """Criterion -> score that ``rater`` gave ``image`` (missing criteria are absent)."""
        with self.connect() as con:
            rows = con.execute("SELECT criterion, score FROM ratings WHERE rater = ? AND image = ?", (rater, image))
            return dict(rows)

    def completed(self, rater: str) -> int:
        """How many images ``rater`` has rated on every criterion."""
        with self.connect() as con:
            row = con.execute(
                "SELECT COUNT(*) FROM (SELECT image FROM ratings WHERE rater = ? GROUP BY image HAVING COUNT(*) = ?)",
                (rater, len(CRITERIA)),
            ).fetchone()
            return row[0]

    def position(self, rater: str) -> int:
        """Where ``rater`` stopped in their order (0 for a new rater)."""
        with self.connect() as con:
            row = con.execute("SELECT position FROM raters WHERE rater = ?", (rater,)).fetchone()
            return 0 if row is None else row[0]

    def set_position(self, rater: str, position: int) -> None:
        with self.transaction() as con:
            con.execute(
                "INSERT INTO raters VALUES (?, ?, ?) ON CONFLICT (rater) "
                "DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at",
                (rater, position, _now()),
            )

    def ratings(self) -> list[Rating]:
        """Every rating with its image's method, ordered by rater, image, criterion."""
        with self.connect() as con:
            rows = con.execute(
                "SELECT r.rater, r.image, i.method, r.criterion, r.score FROM ratings r "
                "JOIN items i ON i.image = r.image ORDER BY r.rater, r.image, r.criterion"
            )
            return [Rating(*row) for row in rows]


def open_study(path: Path, images: list[StudyImage], settings: dict[str, str]) -> RatingDB:
    """Create the ratings file for this image set, or reopen it when it holds the same study.

    Raises `UserError` (nothing written) for a file that is not ours, or one started with other images or
    settings: ratings of two studies are never mixed.
    """
    if not _is_empty(path):
        db = open_existing(path)
        if db.settings() != settings or db.images() != images:
            raise UserError(
                f"holds another study ({_describe(db.settings(), len(db.images()))}, here: "
                f"{_describe(settings, len(images))}); pass the same images and options, or another --db",
                path,
            )
        return db
    tmp = path.with_name(f".{path.name}.tmp")  # built aside, then moved into place: never half a study
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.unlink(missing_ok=True)
        con = sqlite3.connect(tmp, isolation_level=None)
        try:
            con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            con.executescript(f"BEGIN; {SCHEMA} COMMIT;")
            con.execute("BEGIN")
            con.executemany("INSERT INTO study VALUES (?, ?)", settings.items())
            con.executemany(
                "INSERT INTO items VALUES (?, ?, ?, ?, ?)",
                [(i, s.image, s.method, s.identity, s.prompt) for i, s in enumerate(images)],
            )
            con.execute("COMMIT")
            con.execute("PRAGMA journal_mode = WAL")
        finally:
            con.close()
        os.replace(tmp, path)
    except (sqlite3.Error, OSError) as err:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if find_disk_full(err) is not None:
            raise disk_full_error(err, path) from None
        raise UserError(f"cannot create the ratings database here ({_create_problem(err, path)})", path) from None
    return RatingDB(path)


def _create_problem(err: BaseException, path: Path) -> str:
    """Why a new ratings file cannot be made: the folder's own problem (read-only, not writable) when it has one,
    else the error's."""
    folder = next((p for p in [path.parent, *path.parent.parents] if p.exists()), path.parent)
    if not os.access(folder, os.W_OK):  # also False on a read-only filesystem, even for root
        return f"{folder} is on a read-only filesystem or not writable; pass --db in a writable folder"
    return getattr(err, "strerror", None) or str(err)


def open_existing(path: Path) -> RatingDB:
    """A ratings file written by `open_study`, checked read-only first; `UserError` for anything else."""
    if path.is_dir():
        raise UserError("is a folder, not a ratings database file", path)
    if not path.is_file():
        raise UserError("ratings database not found", path)
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            app_id = con.execute("PRAGMA application_id").fetchone()[0]
            version = con.execute("PRAGMA user_version").fetchone()[0]
            tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            check = con.execute("PRAGMA quick_check").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error as err:
        raise UserError(f"not a readable ratings database ({err})", path) from None
    if app_id != APPLICATION_ID or not tables >= TABLES:
        raise UserError("not an idportrait ratings database (another application's SQLite file)", path)
    if version != SCHEMA_VERSION:
        raise UserError(f"ratings database schema version {version}, this idportrait reads {SCHEMA_VERSION}", path)
    if check != "ok":
        raise UserError(f"corrupt ratings database ({check})", path)
    return RatingDB(path)


def _is_empty(path: Path) -> bool:
    return not path.exists() or (path.is_file() and path.stat().st_size == 0)


def _describe(settings: dict[str, str], count: int) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(settings.items())) + f", {count} images"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
