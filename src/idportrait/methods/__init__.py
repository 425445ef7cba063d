"""Identity methods behind one interface (`Method`: ``prepare`` per reference, ``generate`` per prompts/seeds).

    from idportrait.methods import load_method
    method = load_method("consistentid", base="path/or/hub-id", device="cuda")

`METHODS` is the registry: method name -> loader. Loaders take ``base`` plus their own keyword options
and import their heavy dependencies lazily.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from idportrait.errors import UserError
from idportrait.methods.base import Method
from idportrait.methods.consistentid import load_consistentid_method
from idportrait.methods.consistentid_sdxl import load_consistentid_sdxl_method
from idportrait.methods.instantid import load_instantid_method
from idportrait.methods.ipadapter_faceid import load_ipadapter_faceid_method
from idportrait.methods.plain_sd import load_plain_sd_method

METHODS: dict[str, Callable[..., Method]] = {
    "consistentid": load_consistentid_method,
    "consistentid-sdxl": load_consistentid_sdxl_method,
    "instantid": load_instantid_method,
    "ipadapter-faceid": load_ipadapter_faceid_method,
    "plain-sd": load_plain_sd_method,
}


def load_method(name: str, base: str | None = None, **options: Any) -> Method:
    """Load a registered method; ``base`` None = the method's default base model."""
    if name not in METHODS:
        raise UserError(f"unknown method {name!r}; available: {', '.join(sorted(METHODS))}")
    return METHODS[name](base=base, **options)


__all__ = ["METHODS", "Method", "load_method"]
