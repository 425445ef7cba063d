"""Generic access to the Hugging Face hub: one quick reachability check, then one-line errors.

Offline or unreachable hubs make diffusers/transformers/huggingface_hub raise many different errors
(``OSError``, ``LocalEntryNotFoundError``, ``HfHubHTTPError``, ``ValueError``...), and without a network
their download retries take minutes. `fetch` checks once (one HTTP request bounded by a few seconds, or
``HF_HUB_OFFLINE=1``) whether the hub can be reached, loads only from the local cache when it cannot, and
turns any failure into one `ModelNotFoundError` naming the model and the option that takes a local copy.
"""

from __future__ import annotations

import functools
import pickle
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from idportrait.errors import CheckpointError, ModelNotFoundError

T = TypeVar("T")


def _load_errors() -> tuple[type[BaseException], ...]:
    """The exception types a failed download / bad model folder raises (import-light)."""
    import httpx
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError

    return (OSError, ValueError, KeyError, HfHubHTTPError, HFValidationError, httpx.HTTPError)


@functools.cache
def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the hub endpoint (``HF_ENDPOINT``) answers within ``timeout`` seconds (`url_reachable`)."""
    from huggingface_hub import constants

    return url_reachable(constants.ENDPOINT, timeout)


def url_reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether ``url`` answers an HTTP request within ``timeout`` seconds.

    Any HTTP answer counts; a refused or silent connection, a failed or slow name lookup, or ``HF_HUB_OFFLINE``
    (offline mode covers every download) means unreachable. The request runs in a daemon thread, so nothing
    can make this wait longer.
    """
    import urllib.error
    import urllib.request

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    done, answered = threading.Event(), []

    def ask() -> None:
        try:
            urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout).close()
            answered.append(True)
        except urllib.error.HTTPError:
            answered.append(True)  # an HTTP error status is still an answer
        except (OSError, ValueError):
            pass
        finally:
            done.set()

    threading.Thread(target=ask, daemon=True).start()
    done.wait(timeout)
    return bool(answered)


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


def url_file(url: str, what: str, option: str) -> Path:
    """The file at ``url`` in the torch hub cache (``<torch hub dir>/checkpoints/<file name>``), downloaded once.

    Raises `ModelNotFoundError` naming the file and the ``option`` that takes a local copy when it cannot be had.
    """
    import torch

    target = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
    if not target.is_file():
        if not url_reachable(url):
            raise ModelNotFoundError(
                f"could not download the {what} {target.name} (not in the torch hub cache): {url} cannot be reached; "
                f"download the file and pass its path with {option}"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(url, str(target), progress=True)
        except Exception as err:
            raise ModelNotFoundError(
                f"could not download the {what} {target.name} from {url} ({type(err).__name__}); "
                f"download the file and pass its path with {option}"
            ) from None
    return target


def url_state_dict(path: str | Path | None, url: str, what: str, option: str) -> tuple[Path, dict]:
    """(file, state dict) of ``path``, or of the file at ``url`` (`url_file`) when ``path`` is None.

    Loaded with ``torch.load(weights_only=True)``; a missing file is `ModelNotFoundError`, anything else that is
    not a state dict `CheckpointError`, each naming the file.
    """
    path = Path(path) if path is not None else url_file(url, what, option)
    if not path.is_file():
        raise ModelNotFoundError(f"{what} not found", path)
    return path, read_torch_file(path, what)


def read_torch_file(path: str | Path, what: str) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU: tensors, numbers, strings and containers only.

    A file holding any other object is refused unread, and an unreadable one too, each as one
    `CheckpointError` line naming the file: ``<path>: not a usable <what>: <reason>``, without torch's advice
    to load it with ``weights_only=False`` (which would run the code a malicious file carries).
    """
    import warnings

    import torch

    try:
        with warnings.catch_warnings():  # torch warns on stderr about pickle protocols it may not read
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL ([\w.]+)", str(err))
        if found:
            reason = f"it holds a reference to {found.group(1)}, not plain data; refused without loading it"
        else:
            reason = f"unreadable with torch.load ({torch_reason(err)})"
    except Exception as err:
        reason = f"unreadable with torch.load ({type(err).__name__}: {torch_reason(err)})"
    raise CheckpointError(f"not a usable {what}: {reason}", path) from None


def torch_reason(err: BaseException) -> str:
    """What ``torch.load`` found wrong, from its message: the first sentence that is not its advice about
    ``weights_only`` or its documentation (``WeightsUnpickler error:`` prefix removed)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err))
    for paragraph in re.split(r"\n\s*\n", text):
        line = paragraph.strip().split("\n")[0].strip()
        if not line or "weights_only" in line or line.startswith("Check the documentation"):
            continue
        line = line.removeprefix("WeightsUnpickler error:").strip()
        return re.split(r"(?<=\.) ", line, maxsplit=1)[0][:200]
    return first_line(err)


def first_line(err: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (terminal colour codes removed, at most ``limit`` characters);
    the exception's type name when the message is empty."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip()
    return (text.splitlines()[0] if text else type(err).__name__)[:limit]
