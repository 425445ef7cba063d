"""``--set KEY=VALUE``: method options read and checked against what each method declares, before any model loads.

A method declares its options in its loader's signature (`idportrait.methods.METHODS`): name, type and default.
A loader that also takes ``**defaults`` hands them to its pipeline's call (`CALL_PIPELINES`), so the typed keywords
of that call are options too. Each value is read as its declared type (``true``/``false``, whole numbers, finite
numbers, text and paths, ``[WIDTH, HEIGHT]`` sizes, ``null`` where None is allowed) and checked by the rules the
named options follow (`NAMED_CHECKS`: sizes as ``--height``, face models as ``--face-backend`` / ``--parser``).
A new loader or pipeline option needs nothing here: its annotation declares it.
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from idportrait.errors import UserError
from idportrait.generate.checks import size_problem

COMMAND_OPTIONS = {"base": "--base", "device": "--device", "dtype": "--dtype"}
"""Loader parameters every command sets from its own option."""
CALL_PIPELINES: dict[str, tuple[str, ...]] = {
    "consistentid": ("idportrait.pipelines.consistentid_sd15:ConsistentIDPipeline",),
    "consistentid-sdxl": ("idportrait.pipelines.consistentid_sdxl:ConsistentIDSDXLPipeline",),
    "instantid": ("idportrait.pipelines.instantid_sdxl:InstantIDPipeline",),
    "ipadapter-faceid": ("diffusers:StableDiffusionPipeline", "diffusers:StableDiffusionXLPipeline"),
    "plain-sd": ("diffusers:StableDiffusionPipeline",),
}
"""Method -> the pipeline(s) whose ``__call__`` receives its loader's ``**defaults`` (imported only when needed)."""
FILLED_BY_METHODS = frozenset({"prompt", "prompt_2", "num_images_per_prompt", "output_type", "return_dict"})
"""Call keywords every method passes itself."""
SETTABLE = (bool, int, float, tuple, str, Path)
"""The types a command-line value can have, in the order a union of them is read (``str | Path`` as text)."""


def check_sizes(key: str, value: Any) -> None:
    sides = value if isinstance(value, list) else [value]
    for name, side in zip(("width", "height") if isinstance(value, list) else (key,), sides, strict=True):
        problem = size_problem(side)
        if problem:
            raise ValueError(f"{name} {side} {problem}")


def check_face_backend(key: str, value: Any) -> None:
    from idportrait.faces.analyzer import check_analyzer_name

    check_analyzer_name(value)


def check_parser(key: str, value: Any) -> None:
    from idportrait.faces.analyzer import check_parser_name

    check_parser_name(value)


def check_accelerator(key: str, value: Any) -> None:
    from idportrait.pipelines.accelerators import accelerator

    accelerator(value)


NAMED_CHECKS: dict[str, Callable[[str, Any], None]] = {
    "size": check_sizes,
    "height": check_sizes,
    "width": check_sizes,
    "face_backend": check_face_backend,
    "parser": check_parser,
    "accelerator": check_accelerator,
}
"""Option name -> the rule of the named option of the same meaning (raises ValueError or `UserError`)."""


def split_pairs(pairs: list[str]) -> dict[str, str]:
    """``["lora-scale=0.5", "size=[64, 64]"]`` -> ``{"lora_scale": "0.5", "size": "[64, 64]"}`` (values as typed)."""
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set expects KEY=VALUE, got {pair!r}")
        options[key.strip().replace("-", "_")] = value
    return options


def method_options(method: str, pairs: list[str], own_options: dict[str, str] | None = None) -> dict[str, Any]:
    """The ``--set`` pairs as typed values for ``load_method(method, ...)``; one `UserError` line for a key the method
    does not declare, a value of the wrong type or one its named option would refuse.

    ``own_options``: loader or call keyword -> the command's own option that sets it (``{"num_inference_steps":
    "--steps"}``), refused here because the command passes it anyway.
    """
    from idportrait.methods import METHODS

    raw = split_pairs(pairs)
    if not raw:
        return {}
    if method not in METHODS:
        raise UserError(f"unknown method {method!r}; available: {', '.join(sorted(METHODS))}")
    declared, takes_defaults = loader_options(METHODS[method])
    if takes_defaults and any(key not in declared for key in raw):
        declared = call_options(method) | declared
    options = {}
    for key, text in raw.items():
        where = f"--set {key}={text}"
        if key in COMMAND_OPTIONS or key in (own_options or {}):
            raise UserError(f"{where}: use {(own_options or {}).get(key) or COMMAND_OPTIONS[key]}")
        if key not in declared:
            taken = COMMAND_OPTIONS.keys() | (own_options or {}).keys()
            names = ", ".join(sorted(k for k, kind in declared.items() if k not in taken and settable_kind(kind)))
            raise UserError(f"{where}: {method} has no option {key!r}; --set takes {names}")
        options[key] = read_value(where, key, text, declared[key])
    return options


def loader_options(loader: Callable[..., Any]) -> tuple[dict[str, Any], bool]:
    """(keyword -> annotation, whether it takes ``**defaults``) of a method loader."""
    hints = type_hints(loader)
    params = inspect.signature(loader).parameters.values()
    named = {p.name: hints.get(p.name) for p in params if p.kind is p.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD}
    return named, any(p.kind is p.VAR_KEYWORD for p in params)


def call_options(method: str) -> dict[str, Any]:
    """Keyword -> annotation of the call of ``method``'s pipeline(s), less what the methods pass themselves."""
    from transformers.utils import logging as transformers_logging

    found: dict[str, Any] = {}
    for target in CALL_PIPELINES.get(method, ()):
        module, _, name = target.partition(":")
        verbosity = transformers_logging.get_verbosity()
        transformers_logging.set_verbosity_error()  # its import-time notices would add lines to a one-line refusal
        try:
            call = getattr(importlib.import_module(module), name).__call__
        finally:
            transformers_logging.set_verbosity(verbosity)
        hints = type_hints(call)
        for param in inspect.signature(call).parameters.values():
            if param.name != "self" and param.kind is param.POSITIONAL_OR_KEYWORD:
                found.setdefault(param.name, hints.get(param.name))
    return {k: v for k, v in found.items() if k not in FILLED_BY_METHODS}


def type_hints(function: Callable[..., Any]) -> dict[str, Any]:
    """``typing.get_type_hints``, or {} where an annotation cannot be resolved (its option is then not settable)."""
    try:
        return typing.get_type_hints(function)
    except (NameError, TypeError):
        return {}


def read_value(where: str, key: str, text: str, annotation: Any) -> Any:
    """``text`` read as ``annotation`` (bool, int, float, str / Path, ``tuple[int, int]``, Optional of those) and
    checked by `NAMED_CHECKS`; `UserError` naming ``where`` otherwise."""
    value = json_or_text(text)
    if value is None and is_union(annotation) and type(None) in typing.get_args(annotation):
        return None
    kind = settable_kind(annotation)
    if kind is None:
        raise UserError(f"{where}: {key} cannot be set from the command line")
    try:
        value = convert(kind, value, text)
        if key in NAMED_CHECKS:
            NAMED_CHECKS[key](key, value)
    except (ValueError, UserError) as err:
        raise UserError(f"{where}: {err}") from None
    return value


def settable_kind(annotation: Any) -> type | None:
    """The `SETTABLE` type a command-line value of ``annotation`` is read as; None when it cannot be written."""
    kinds = typing.get_args(annotation) if is_union(annotation) else (annotation,)
    return next((k for k in SETTABLE if any(a is k or typing.get_origin(a) is k for a in kinds)), None)


def convert(kind: type, value: Any, text: str) -> Any:
    """``value`` (JSON-decoded, or ``text`` itself) as ``kind``; ValueError saying what was expected."""
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("must be a whole number")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError("must be a finite number")
        return float(value)
    if kind is tuple:
        if not (isinstance(value, list) and len(value) == 2 and all(type(v) is int for v in value)):
            raise ValueError("must be [WIDTH, HEIGHT] in pixels, e.g. [512, 512]")
        return value
    return value if isinstance(value, str) else text


def json_or_text(text: str) -> Any:
    """The JSON value of ``text`` (``true``, ``0.5``, ``[64, 64]``, ``null``), or the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)
