"""How the curation stages run, not what they decide: never compared when a run resumes (light: no imports)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DownloadConfig:
    """How images are fetched (never part of the curation settings: it changes no rule).

    deadline_s: seconds one attempt may take in all (connect, headers, body).
    connect_timeout_s: seconds to open the connection (within the deadline).
    retries: further attempts after a timeout or a 5xx reply.
    backoff_s: sleep before retry k (1-based) is ``backoff_s * 2 ** (k - 1)`` seconds.
    per_host: downloads at once against one host (name and port) from one process.
    max_bytes: larger bodies are refused (``body_too_large``) without reading them whole.
    max_redirects: redirects followed per attempt (``too_many_redirects`` beyond).
    threads: concurrent downloads of one process (`download_stage`, the local runner).
    """

    deadline_s: float = 20.0
    connect_timeout_s: float = 5.0
    retries: int = 2
    backoff_s: float = 1.0
    per_host: int = 8
    max_bytes: int = 32 * 1024 * 1024
    max_redirects: int = 5
    threads: int = 32


@dataclass(frozen=True)
class StageOptions:
    """How the stages run, not what they decide (never compared when a run resumes).

    device: where face detection runs ("cpu", "cuda", "cuda:N", "auto").
    detect_threads: CPU threads of each face-analysis session (None: one per core; the local runner gives each
        of N worker processes the cores / N, so that N sessions do not oversubscribe the machine).
    detect_batch: images per `detect_stage` call.
    text_batch: rows per `text_stage` call (NER batches within it).
    queue: samples in flight between the reader and detection (backpressure; their images are in memory).
    download: deadline, retries, per-host cap and threads of the downloads (also decoding threads here).
    """

    device: str = "cpu"
    detect_threads: int | None = None
    detect_batch: int = 16
    text_batch: int = 256
    queue: int = 128
    download: DownloadConfig = field(default_factory=DownloadConfig)


@dataclass
class RayOptions:
    """Where Ray runs and how far each stage of `ray_runner.run_ray` scales.

    address: a running cluster ("auto", "ray://host:10001"); None starts a local Ray with ``num_cpus``.
    download_tasks: concurrent download tasks (None: as many as Ray fits).
    download_cpus: CPUs a download task reserves (fractional: downloads wait on the network).
    detect_actors: face detection actors, one model copy each.
    detect_gpus: GPUs per detection actor (None: 1 when the cluster has GPUs, else 0).
    """

    address: str | None = None
    num_cpus: int | None = None
    download_tasks: int | None = None
    download_cpus: float = 0.25
    detect_actors: int = 1
    detect_gpus: float | None = None
