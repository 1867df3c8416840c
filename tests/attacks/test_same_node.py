"""Two hosts given one ``daemon.node`` on a shared catalogue (issue 18): a copied recd.toml,
or a cloned VM whose host name is the default. Claims are counted per node, and a starting
host drops its node's claims that hold no intent, so the second host would take the first's
in-flight claims for its own and the two could erase one recording together. The second recd
to connect waits instead, as for an unreachable database: READY, nothing scanned or erased,
``recctl status``, every other command (exit 69) and the journal saying which name is in use
and from where; it starts
serving by itself once the first is gone. Real processes, real PostgreSQL.
"""

from __future__ import annotations

import time
from pathlib import Path

from recd.core.model import recording_id
from tests.e2e.helpers import recctl, wait_until, write_due_at
from tests.e2e.multihost import Node, chain
from tests.pg import PgDatabase

SPOOL = """\
[[source]]
name = "{name}"
type = "directory"
path = "{path}"
pattern = '^(?P<licence>[A-Z0-9-]+)/[^/]+\\.wav$'
nodes = ["a"]
"""


def test_a_second_host_with_the_same_node_name_waits_until_the_first_is_gone(
    tmp_path: Path, pg_database: PgDatabase
) -> None:
    url = pg_database.url
    first, second = Node("a", tmp_path / "host1"), Node("a", tmp_path / "host2")
    try:
        for host in (first, second):
            (host.base / "spool" / "recordings").mkdir(parents=True)
            host.write(
                url,
                SPOOL.format(
                    name=f"{host.base.name}-spool", path=host.base / "spool" / "recordings"
                ),
            )
        first.start()
        first.ready()
        due = write_due_at(second.base / "spool", "L1/call.wav", time.time() - 60)
        second.start()
        second.ready()  # served, READY, waiting: systemd sees a started unit, not a crash loop
        status = second.status()
        problem = status["catalogue"]["problem"]
        assert status["catalogue"]["reachable"] is False, status
        assert 'daemon.node "a" is in use by another recd (connected from a local socket' in (
            problem
        )
        assert "give each host its own daemon.node" in problem
        assert (second.base / "spool/recordings/L1/call.wav").exists()  # nothing erased
        assert "is in use by another recd" in second.log()
        hold = recctl("--socket", str(second.socket), "hold", "place", "--licence", "L1",
                      "--case", "C-1", "--reason", "court")  # fmt: skip
        assert hold.returncode == 69, hold.stderr  # another host's recd can take it
        assert 'daemon.node "a" is in use by another recd' in hold.stderr
        assert "catalogue" not in first.status()  # only there while waiting
        first.stop()
        wait_until(
            "the second host serving once the name is free",
            lambda: not (second.base / "spool/recordings/L1/call.wav").exists(),
            timeout=90,
        )
        second.stop()
    finally:
        first.close()
        second.close()
    done = [e for e in chain(url) if e["action"] == "erase.done"]
    assert [(e["subject"], e["details"]["node"]) for e in done] == [
        (recording_id("host2-spool", "L1/call.wav"), "a")
    ]
    assert due.timestamp() < time.time()
