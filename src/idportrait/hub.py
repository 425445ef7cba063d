"""Fetch models by local path or hub id, turning every loader failure into one clear `ModelNotFoundError`.

Offline or unreachable hubs make diffusers/transformers/huggingface_hub raise many different errors
(``OSError``, ``LocalEntryNotFoundError``, ``HfHubHTTPError``, ``ValueError``...). Each helper here names
the model that could not be fetched and the option that points at a local copy instead.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from idportrait.errors import ModelNotFoundError

T = TypeVar("T")


def _load_errors() -> tuple[type[BaseException], ...]:
    """The exception types a failed download / bad model folder raises (import-light)."""
    import httpx
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError

    return (OSError, ValueError, KeyError, HfHubHTTPError, HFValidationError, httpx.HTTPError)


@functools.cache
def hub_reachable(timeout: float = 3.0) -> bool:
    """One quick TCP connection to the hub endpoint (False when ``HF_HUB_OFFLINE`` is set)."""
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout).close()
    except OSError:
        return False
    return True


def fetch(what: str, name: str, option: str, load: Callable[[bool], T]) -> T:
    """Run ``load(local_files_only)``; on a download/format failure raise a one-line `ModelNotFoundError`.

    ``what`` describes the model ("base model"), ``name`` is the hub id or path that was asked for, and
    ``option`` is the CLI option that takes a local path instead (``--base``). When the hub cannot be
    reached, only the local cache is tried (no slow retries).
    """
    local_path = Path(name).exists()
    online = not local_path and hub_reachable()
    try:
        return load(not online)
    except _load_errors() as err:
        if local_path:
            detail = str(err).strip().splitlines()[0][:160] if str(err).strip() else ""
            reason = f"the local path is not a usable {what} ({type(err).__name__}: {detail})"
        elif online:
            reason = f"the hub download failed ({type(err).__name__})"
        else:
            reason = "it is not in the local cache and the hub cannot be reached"
        raise ModelNotFoundError(
            f"could not load the {what} '{name}': {reason}. Download it and pass its local path with {option} PATH."
        ) from None


def hub_file(repo_or_path: str, filename: str, what: str, option: str) -> Path:
    """A local file, a file inside a local folder, or ``filename`` downloaded from the hub repo ``repo_or_path``."""
    local = Path(repo_or_path)
    if local.is_file():
        return local
    if local.is_dir():
        if (local / filename).is_file():
            return local / filename
        raise ModelNotFoundError(f"{local}: no {filename} in this folder; pass the {what} file itself with {option}")

    def download(local_files_only: bool) -> Path:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(repo_or_path, filename, local_files_only=local_files_only))

    return fetch(what, f"{repo_or_path}/{filename}", option, download)
