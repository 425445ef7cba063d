"""The listening address of ``serve`` and ``evaluate rate``, checked before anything is created: a port in use, out of
range or a host that is not this machine's is one line, and no ratings file or output folder is left behind."""

from __future__ import annotations

import socket

import pytest

from cli_run import run_cli
from idportrait.errors import UserError
from idportrait.serve.address import check_listen_address
from loopback_port import free_port


@pytest.fixture
def taken_port():
    """A port another program listens on (this test's own socket)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize(
    ("host", "port", "message"),
    [
        ("127.0.0.1", 99999, "--port 99999: must be a port number from 1 to 65535"),
        ("127.0.0.1", 0, "--port 0: must be a port number from 1 to 65535"),
        ("999.1.1.1", 7860, "--host 999.1.1.1: not a host name or address of this machine"),
        ("192.0.2.7", 7860, "--host 192.0.2.7: not an address of this machine"),  # TEST-NET-1: nobody's address
    ],
)
def test_bad_addresses_name_their_option(host, port, message):
    with pytest.raises(UserError, match=message.replace(".", r"\.")):
        check_listen_address(host, port)


def test_a_port_in_use_is_named_and_a_free_one_passes(taken_port):
    with pytest.raises(UserError, match=f"--port {taken_port}: already in use on 127.0.0.1 by another program"):
        check_listen_address("127.0.0.1", taken_port)
    check_listen_address("127.0.0.1", free_port())


def test_commands_refuse_a_port_in_use_before_creating_anything(monkeypatch, capsys, tmp_path, taken_port):
    (tmp_path / "generated").mkdir()
    db = tmp_path / "study" / "ratings.db"
    args = ["--generated", str(tmp_path / "generated"), "--references", str(tmp_path), "--db", str(db)]
    code, _, err = run_cli(monkeypatch, capsys, "evaluate", "rate", *args, "--port", str(taken_port))
    assert code == 2 and err.strip().startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert f"--port {taken_port}: already in use" in err
    assert not db.parent.exists()

    out = tmp_path / "serve"
    code, _, err = run_cli(monkeypatch, capsys, "serve", "--port", str(taken_port), "--out", str(out))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "already in use" in err, err
    assert not out.exists()
