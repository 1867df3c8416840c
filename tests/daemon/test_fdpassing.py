"""Descriptors beside a reply (SCM_RIGHTS): recd.daemon.serving sends them, recd.cli.client
keeps them when asked (``recctl backup``), and nobody leaks one: real Unix sockets and real
files."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from recd.cli import client
from recd.daemon.serving import FDS_PER_MESSAGE, Answer
from recd.protocol import Reply, Request, encode_reply
from tests.daemon.helpers import serve, unix_listener, wait_until


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class Files:
    """Answers every request with ``count`` descriptors, each of a file holding its index."""

    name = "files"

    def __init__(self, base: Path, count: int) -> None:
        self.paths = []
        for i in range(count):
            path = base / f"f{i}"
            path.write_text(str(i))
            self.paths.append(path)

    def complete(self, data: bytes, eof: bool) -> bool:
        return eof or b"\n" in data

    def answer(self, conn: socket.socket, request: bytes) -> Answer:
        fds = tuple(os.open(p, os.O_RDONLY | os.O_CLOEXEC) for p in self.paths)
        return encode_reply(Reply.success({"files": len(fds)})), fds

    def refusal(self, why: str, *, busy: bool) -> bytes:
        return b""


@pytest.mark.parametrize("count", [1, FDS_PER_MESSAGE + 50])
def test_the_client_receives_every_descriptor_in_order_and_the_server_keeps_none(
    tmp_path: Path, count: int
) -> None:
    endpoint = Files(tmp_path, count)
    before = open_fds()
    with serve(endpoint, unix_listener(tmp_path / "s")) as _:
        started = open_fds()
        reply = client.call(tmp_path / "s", Request("x"), fds=True)
        try:
            assert reply.result == {"files": count}
            assert len(reply.fds) == count
            assert [os.pread(fd, 10, 0) for fd in reply.fds] == [
                str(i).encode() for i in range(count)
            ]
        finally:
            for fd in reply.fds:
                os.close(fd)
        wait_until("the server closed its copies", lambda: open_fds() <= started)
    assert open_fds() <= before + 1  # a worker's stray descriptor at most


def test_a_client_that_did_not_ask_for_descriptors_gets_none(tmp_path: Path) -> None:
    endpoint = Files(tmp_path, 3)
    with serve(endpoint, unix_listener(tmp_path / "s")):
        before = open_fds()
        reply = client.call(tmp_path / "s", Request("x"))
        assert (reply.result, reply.fds) == ({"files": 3}, ())
        wait_until("every copy closed", lambda: open_fds() <= before)


def test_a_client_gone_before_the_reply_leaves_no_descriptor_open(tmp_path: Path) -> None:
    endpoint = Files(tmp_path, 5)
    with serve(endpoint, unix_listener(tmp_path / "s")):
        before = open_fds()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(str(tmp_path / "s"))
            sock.sendall(b"x\n")
        time.sleep(0.2)
        wait_until("every copy closed", lambda: open_fds() <= before)
