"""``--device`` / ``--dtype`` names: one resolution for every loader."""

from __future__ import annotations

import pytest
import torch

from idportrait.devices import pick_device, resolve_device
from idportrait.errors import UserError


def test_auto_follows_torch_and_names_pass_through():
    assert pick_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert pick_device("cuda:1") == "cuda:1"
    assert resolve_device("cpu", "auto") == ("cpu", torch.float32)
    assert resolve_device("cpu", "bf16") == ("cpu", torch.bfloat16)
    assert resolve_device("cuda", "auto") == ("cuda", torch.float16)


@pytest.mark.parametrize(("dtype", "message"), [("float8", "unknown dtype"), ("fp16", "float16 needs a GPU")])
def test_bad_dtype_is_a_user_error(dtype, message):
    with pytest.raises(UserError, match=message):
        resolve_device("cpu", dtype)
