"""The control socket under misuse: too many clients, slow or silent clients, huge requests, and an
untrusted directory in /tmp. Real Unix sockets and directories throughout."""

from __future__ import annotations

import json
import os
import socket
import stat
import threading
from pathlib import Path

import pytest
from emotiond.sources.triggers import ControlSocketTrigger, ensure_socket_dir, send_command

from mosquitto import wait_until


def _connect(path: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20.0)
    s.connect(str(path))
    return s


def _reply(s: socket.socket) -> dict:
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return json.loads(data)


def test_connections_beyond_the_limit_get_busy_and_slots_come_back(tmp_path: Path) -> None:
    release = threading.Event()
    running: list[str] = []

    def command(name: str, args: dict) -> dict:
        running.append(name)
        release.wait(20)
        return {"ok": True}

    path = tmp_path / "c.sock"
    trig = ControlSocketTrigger(path, command, max_connections=2)
    trig.start()
    held = [_connect(path), _connect(path)]
    try:
        for s in held:
            s.sendall(b'{"command": "slow"}\n')
        wait_until(lambda: len(running) == 2, 10, what="two requests being served")
        with _connect(path) as third:
            busy = _reply(third)
        assert busy["ok"] is False and busy["error"].startswith("busy: 2 requests already being served")
        assert trig.rejected == 1 and len(running) == 2  # the refused one never reached the command
        release.set()
        assert [_reply(s) for s in held] == [{"ok": True}, {"ok": True}]
        assert send_command(path, {"command": "again"}) == {"ok": True}  # slots were given back
    finally:
        release.set()
        for s in held:
            s.close()
        trig.stop()


@pytest.mark.parametrize("sent", [b"", b'{"command": "cap'], ids=["silent", "partial"])
def test_a_client_that_never_finishes_its_request_is_answered_and_dropped(tmp_path: Path, sent: bytes) -> None:
    calls: list[str] = []
    path = tmp_path / "c.sock"
    trig = ControlSocketTrigger(path, lambda n, a: calls.append(n) or {"ok": True}, max_connections=1, timeout=0.3)
    trig.start()
    try:
        with _connect(path) as s:
            s.sendall(sent)
            reply = _reply(s)
            assert s.recv(10) == b""  # the server closed it
        assert reply == {"ok": False, "error": "no complete request within 0.3 s"}
        assert calls == []
        assert send_command(path, {"command": "next"}) == {"ok": True}  # its slot is free again
    finally:
        trig.stop()


def test_a_slow_drip_is_bounded_by_one_deadline_for_the_whole_request(tmp_path: Path) -> None:
    path = tmp_path / "c.sock"
    trig = ControlSocketTrigger(path, lambda n, a: {"ok": True}, timeout=0.5)
    trig.start()
    stop = threading.Event()
    try:
        with _connect(path) as s:
            def drip() -> None:  # one byte well inside any per-recv timeout, forever
                while not stop.wait(0.05):
                    try:
                        s.send(b" ")
                    except OSError:
                        return
            t = threading.Thread(target=drip, daemon=True)
            t.start()
            reply = _reply(s)
            stop.set()
            t.join(5)
        assert reply == {"ok": False, "error": "no complete request within 0.5 s"}
    finally:
        stop.set()
        trig.stop()


def test_an_oversized_request_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    calls: list[str] = []
    path = tmp_path / "c.sock"
    trig = ControlSocketTrigger(path, lambda n, a: calls.append(n) or {"ok": True}, max_request_bytes=1024)
    trig.start()
    try:
        with _connect(path) as s:
            s.sendall(b'{"command": "x", "pad": "' + b"a" * 5000 + b'"}\n')
            reply = _reply(s)
        assert reply == {"ok": False, "error": "request larger than 1024 bytes"} and calls == []
        assert send_command(path, {"command": "small"}) == {"ok": True}
    finally:
        trig.stop()


@pytest.fixture
def shared(tmp_path: Path) -> Path:
    """A world-writable sticky directory, like /tmp."""
    d = tmp_path / "tmp"
    d.mkdir()
    d.chmod(0o1777)
    return d


def test_socket_dir_in_a_shared_directory_is_created_private(shared: Path) -> None:
    path = shared / f"emotiond-{os.getuid()}" / "control.sock"
    trig = ControlSocketTrigger(path, lambda n, a: {"ok": True})
    old = os.umask(0)  # even with the most permissive umask the directory ends up 0700
    try:
        trig.start()
    finally:
        os.umask(old)
    try:
        st = path.parent.lstat()
        assert stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == os.geteuid()
        assert send_command(path, {"command": "x"}) == {"ok": True}
    finally:
        trig.stop()
    ensure_socket_dir(path.parent)  # our own private directory is reused


def test_socket_dir_with_a_wider_mode_is_refused(shared: Path) -> None:
    folder = shared / "emotiond-x"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    with pytest.raises(RuntimeError, match=r"has mode 0755, expected 0700; not using it"):
        ControlSocketTrigger(folder / "control.sock", lambda n, a: {}).start()
    assert list(folder.iterdir()) == []


def test_socket_dir_that_is_a_symlink_is_refused(shared: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    (shared / "emotiond-x").symlink_to(target)
    with pytest.raises(RuntimeError, match="is not a directory"):
        ensure_socket_dir(shared / "emotiond-x")


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a directory to another user needs root")
def test_socket_dir_owned_by_someone_else_is_refused(shared: Path) -> None:
    folder = shared / "emotiond-0"
    folder.mkdir(mode=0o700)
    os.chown(folder, 65534, 65534)  # what another local user creating it first would leave
    with pytest.raises(RuntimeError, match=r"belongs to uid 65534, not us"):
        ControlSocketTrigger(folder / "control.sock", lambda n, a: {}).start()


def test_socket_dir_outside_shared_directories_is_created_private(tmp_path: Path) -> None:
    folder = tmp_path / "run" / "emotiond"
    ensure_socket_dir(folder)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
