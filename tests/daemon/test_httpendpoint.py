"""The metrics port's HTTP (``recd.daemon.httpendpoint``): a real scrape over loopback TCP (IPv4
and IPv6), an address that cannot listen, serving twice, and a close that ends the server's
threads and frees the port."""

from __future__ import annotations

import socket
import threading
import urllib.request

import pytest

from recd import __version__
from recd.config.types import Listen
from recd.daemon.metrics import Metrics
from recd.errors import StateError
from tests.daemon.helpers import BASE, address, scrape


def test_scrape_over_http(metrics: Metrics) -> None:
    assert address(metrics) is None
    metrics.serve(Listen("127.0.0.1", 0))
    assert metrics.address is not None
    host, port = metrics.address
    assert host == "127.0.0.1"
    assert port > 0
    metrics.erased("retention", "done", 10, 1.0)
    lines = scrape(metrics).splitlines()
    assert 'recd_recordings{licence="acme"} 3.0' in lines
    assert 'recd_deletions_total{reason="retention",result="done"} 1.0' in lines
    assert f'recd_build_info{{version="{__version__}"}} 1.0' in lines


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback on this host")
def test_scrape_over_ipv6_loopback(metrics: Metrics) -> None:
    metrics.serve(Listen("::1", 0))
    assert metrics.address is not None
    host, port = metrics.address
    assert host == "::1"
    with urllib.request.urlopen(f"http://[::1]:{port}/metrics", timeout=10) as response:
        assert b"recd_held_recordings 4.0\n" in response.read()


def test_address_in_use(metrics: Metrics) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(StateError) as exc:
            metrics.serve(Listen("127.0.0.1", port))
    assert (
        str(exc.value) == f"metrics.listen 127.0.0.1:{port}: cannot listen: Address already in use"
    )
    assert metrics.address is None


def test_address_not_on_this_host(metrics: Metrics) -> None:
    with pytest.raises(StateError) as exc:
        metrics.serve(Listen("192.0.2.1", 9464))  # TEST-NET-1: never a local address
    assert str(exc.value) == (
        "metrics.listen 192.0.2.1:9464: cannot listen: Cannot assign requested address"
    )


def test_serve_twice_is_a_bug(metrics: Metrics) -> None:
    metrics.serve(Listen("127.0.0.1", 0))
    with pytest.raises(RuntimeError) as exc:
        metrics.serve(Listen("127.0.0.1", 0))
    assert str(exc.value) == f"metrics already served on {metrics.address}"


def test_close_stops_the_server_and_its_thread_and_is_idempotent() -> None:
    before = set(threading.enumerate())
    m = Metrics(lambda: BASE)
    m.close()  # never served: nothing to do
    m.serve(Listen("127.0.0.1", 0))
    assert m.address is not None
    host, port = m.address
    # one thread serves the connections, one worker computes the scrapes
    assert sorted(t.name for t in set(threading.enumerate()) - before) == [
        "recd-metrics",
        "recd-metrics-worker",
    ]
    m.close()
    assert address(m) is None
    assert not set(threading.enumerate()) - before
    with pytest.raises(OSError), socket.create_connection((host, port), timeout=5):
        pass
    m.close()
    m.serve(Listen(host, port))  # the port is free again for a restart
    m.close()
