"""The PostgreSQL catalogue's sweep role: what is due, erase intents, mass-deletion breakers.

The same rows and rules as ``recd.adapters.sqlite.sweeping``: due recordings through the partial
deadline index; ``add_intents`` is the last check before an erase (a hold placed after the plan
wins) and ``resolve_intents`` marks erasures done in one transaction with dropping their intents.

Several nodes share the catalogue, so each recording is erased by one of them (``schema``'s
``claims``): ``due_in`` claims what it returns for this node (``FOR UPDATE SKIP LOCKED``: two
nodes reading at once take disjoint rows, and neither reads what the other holds);
``add_intents`` records an intent only where this node holds, or now takes, the claim and no
other intent exists, and renews the claim for the batch (so a batch erased late in a long
sweep begins with a fresh lease), all in one statement per batch; ``resolve_intents`` releases
it.
``pending_intents(now)`` takes over, with their claims, the intents of this node and those
whose node's claim expired (it died): recovery runs on whichever node takes the lease. Every
claim is taken by one statement whose ``ON CONFLICT ... WHERE`` re-reads the claim as committed,
so a race between nodes leaves it with one of them. ``now`` comes from the caller's clock:
nodes' clocks must agree to well within the lease.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta

from recd.adapters._breakers import Breakers
from recd.adapters._rows import (
    COLUMNS,
    from_us,
    row_to_intent,
    to_us,
)
from recd.adapters.postgres.errors import guarded
from recd.adapters.postgres.store import Store, pg_name, pg_path, recording
from recd.core.model import Recording
from recd.ports.records import Intent

_DUE = "state = 'present' AND held = 0 AND deadline <= %s"
#: Take the claims of the rows a statement inserts (``recording_id, node, expires``) unless
#: another node holds a live one; RETURNING names the recordings now claimed by this node.
#: A renewal never shortens this node's own claim (a clock stepped back, an older intent).
_CLAIM = (
    "ON CONFLICT (recording_id) DO UPDATE SET node = excluded.node, expires = CASE "
    "WHEN claims.node = excluded.node THEN greatest(claims.expires, excluded.expires) "
    "ELSE excluded.expires END "
    "WHERE claims.node = excluded.node OR claims.expires <= %(now)s RETURNING recording_id"
)
_INTENT_COLUMNS = "id, recording_id, audit_offset, temp_name, plan, created"
#: A batch of intents in one statement: of the batch's recordings, those present, not held and
#: without an intent (locked FOR SHARE in id order: a hold placed meanwhile waits, or wins);
#: their claims taken or renewed, each intent's ``created`` its ``now`` (``excluded.expires``
#: less the lease); an intent for each claim this node now holds. RETURNING: the ids recorded.
_CLAIM_FROM_CREATED = _CLAIM.replace("%(now)s", "excluded.expires - %(lease)s")
_ADD_INTENTS = (
    "WITH batch AS (SELECT * FROM unnest(%(ids)s::text[], %(rids)s::text[], "  # noqa: S608
    "%(offsets)s::bigint[], %(temps)s::text[], %(plans)s::text[], %(created)s::bigint[]) "
    f"AS b ({_INTENT_COLUMNS})), "
    "rec AS (SELECT b.* FROM batch b JOIN recordings r ON r.id = b.recording_id "
    "WHERE r.state = 'present' AND r.held = 0 AND NOT EXISTS "
    "(SELECT 1 FROM intents i WHERE i.recording_id = r.id) ORDER BY r.id FOR SHARE OF r), "
    "claim AS (INSERT INTO claims (recording_id, node, expires) "
    "SELECT recording_id, %(node)s, created + %(lease)s FROM rec ORDER BY recording_id "
    f"{_CLAIM_FROM_CREATED}) INSERT INTO intents ({_INTENT_COLUMNS}) SELECT {_INTENT_COLUMNS} "
    "FROM rec WHERE recording_id IN (SELECT recording_id FROM claim) ORDER BY recording_id "
    "ON CONFLICT (recording_id) DO NOTHING RETURNING id"
)


def _us(value: datetime | None) -> int | None:
    return None if value is None else to_us(value)


@guarded
class Sweeping(Store, Breakers):
    """Due recordings, intents and breakers (``ports`` sweep role) of ``PostgresCatalogue``."""

    node: str  # this node's name in claims
    lease: timedelta  # how long a claim lasts unless renewed
    #: Several nodes share it (``ports.sweeping``).
    shared = True

    def _lease(self, now: datetime) -> dict[str, object]:
        """The parameters every claim takes: this node, ``now`` and the claim's expiry."""
        return {"node": self.node, "now": to_us(now), "until": to_us(now + self.lease)}

    def due_dirs(self, now: datetime) -> list[tuple[str, str]]:
        cursor = self._db.execute(
            f"SELECT DISTINCT source, dir FROM recordings WHERE {_DUE} ORDER BY source, dir",  # noqa: S608
            (to_us(now),),
        )
        return [(r[0], pg_name(r[1])) for r in cursor]

    def due_in(
        self, source: str, directory: str, now: datetime, limit: int, after: str = ""
    ) -> list[Recording]:
        """Claims for this node what it returns: no row another node holds or is claiming."""
        params = self._lease(now) | {
            "source": source, "dir": pg_path(directory), "after": pg_path(after), "limit": limit,
        }  # fmt: skip
        cursor = self._db.execute(
            f"WITH due AS (SELECT {COLUMNS} FROM recordings r WHERE source = %(source)s "  # noqa: S608
            "AND dir = %(dir)s AND location > %(after)s AND state = 'present' AND held = 0 "
            "AND deadline <= %(now)s AND NOT EXISTS (SELECT 1 FROM claims c WHERE "
            "c.recording_id = r.id AND c.node <> %(node)s AND c.expires > %(now)s) "
            "ORDER BY location LIMIT %(limit)s FOR UPDATE OF r SKIP LOCKED), "
            "taken AS (INSERT INTO claims (recording_id, node, expires) "
            f"SELECT id, %(node)s, %(until)s FROM due ORDER BY id {_CLAIM}) "
            f"SELECT {COLUMNS} FROM due WHERE id IN (SELECT recording_id FROM taken) "
            "ORDER BY location",
            params,
        )
        return [recording(r) for r in cursor]

    def counts(self, now: datetime) -> dict[str | None, tuple[int, int]]:
        totals = self._db.execute("SELECT licence, recordings FROM totals WHERE recordings > 0")
        counts = {(r[0] or None): (int(r[1]), 0) for r in totals}
        due = self._db.execute(
            f"SELECT licence, COUNT(*) FROM recordings WHERE {_DUE} GROUP BY licence",  # noqa: S608
            (to_us(now),),
        )
        for licence, n in due:
            counts[licence] = (counts.get(licence, (0, 0))[0], int(n))
        return counts

    def next_deadline(self, after: datetime | None = None) -> datetime | None:
        floor = -(2**63) if after is None else to_us(after)
        row = self._db.execute(
            "SELECT MIN(deadline) FROM recordings WHERE state = 'present' AND held = 0 "
            "AND deadline > %s",
            (floor,),
        ).fetchone()
        return None if row is None or row[0] is None else from_us(row[0])

    def get(self, recording_id: str) -> Recording | None:
        row = self._db.execute(
            f"SELECT {COLUMNS} FROM recordings WHERE id = %s",  # noqa: S608
            (recording_id,),
        ).fetchone()
        return None if row is None else recording(row)

    def newest_mtime_ns(self, source: str, limit_ns: int) -> int | None:
        row = self._db.execute(
            "SELECT MAX(mtime_ns) FROM recordings"
            " WHERE source = %s AND state = 'present' AND mtime_ns <= %s",
            (source, limit_ns),
        ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def all(self) -> Iterator[Recording]:
        """Every recording in id order (tests and small tools)."""
        for row in self._db.execute(f"SELECT {COLUMNS} FROM recordings ORDER BY id"):  # noqa: S608
            yield recording(row)

    def set_skip_reason(self, recording_id: str, reason: str | None) -> None:
        """Why a due recording was kept (None: no longer); its directory loses its stamp."""
        with self._tx():
            self._db.execute(
                "UPDATE recordings SET skip_reason = %s WHERE id = %s", (reason, recording_id)
            )
            if reason is not None:
                self._db.execute(
                    "DELETE FROM dir_stamps WHERE (source, dir) IN "
                    "(SELECT source, dir FROM recordings WHERE id = %s)",
                    (recording_id,),
                )

    # -- intents ------------------------------------------------------------------------------

    def add_intents(self, intents: Iterable[Intent]) -> set[str]:
        """Also: only under this node's claim, taken now if no other node holds a live one
        (renewed from the intent's ``created`` for the batch), and only one intent per
        recording. One statement for the batch (``_ADD_INTENTS``), locking its recordings in
        recording order, so that two nodes' batches never deadlock."""
        batch: dict[str, Intent] = {}
        for i in sorted(intents, key=lambda i: (i.recording_id, i.id)):
            batch.setdefault(i.recording_id, i)  # the first of a recording's: the others lose
        if not batch:
            return set()
        rows = list(batch.values())
        cursor = self._db.execute(
            _ADD_INTENTS,
            {
                "node": self.node,
                "lease": self.lease // timedelta(microseconds=1),
                "ids": [i.id for i in rows],
                "rids": [i.recording_id for i in rows],
                "offsets": [i.audit_offset for i in rows],
                "temps": [i.temp_name for i in rows],
                "plans": [json.dumps(i.plan, sort_keys=True) for i in rows],
                "created": [to_us(i.created) for i in rows],
            },
        )
        return {r[0] for r in cursor}

    def pending_intents(
        self, now: datetime | None = None, sources: Collection[str] | None = None
    ) -> list[Intent]:
        """With ``now``: the intents this node takes over (its own, and those whose claim
        expired), their claims renewed for it; another node's live ones are left to it, and
        so are the claims of intents of recordings outside ``sources``."""
        which = "TRUE" if sources is None else (
            "recording_id IN (SELECT id FROM recordings WHERE source = ANY(%(sources)s))"
        )  # fmt: skip
        params = {"sources": sorted(sources or ())}
        if now is None:
            cursor = self._db.execute(
                f"SELECT {_INTENT_COLUMNS} FROM intents WHERE {which} "  # noqa: S608
                "ORDER BY audit_offset, id",
                params,
            )
        else:
            cursor = self._db.execute(
                "WITH taken AS (INSERT INTO claims (recording_id, node, expires) "  # noqa: S608
                f"SELECT recording_id, %(node)s, %(until)s FROM intents WHERE {which} "
                f"ORDER BY recording_id {_CLAIM}) SELECT {_INTENT_COLUMNS} FROM intents "
                "WHERE recording_id IN (SELECT recording_id FROM taken) ORDER BY audit_offset, id",
                self._lease(now) | params,
            )
        return [row_to_intent(r) for r in cursor]

    def server_time(self) -> datetime | None:
        """The server's ``clock_timestamp()``: its clock as the statement runs (``now()`` is
        the transaction's start, which an autocommit statement shares)."""
        row = self._db.execute("SELECT clock_timestamp()").fetchone()
        assert row is not None
        when: datetime = row[0]
        return when.astimezone(UTC)

    def resolve_intents(
        self, erased: Sequence[tuple[str, datetime]], dropped: Sequence[str]
    ) -> None:
        """Also releases this node's claims on the recordings of the named intents."""
        named = [iid for iid, _ in erased] + list(dropped)
        with self._tx():
            rows = self._db.execute(
                "SELECT id, recording_id FROM intents WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
                (named,),
            )
            ids: dict[str, str] = {r[0]: r[1] for r in rows}
            self._db.cursor().executemany(
                "UPDATE recordings SET state = 'erased', erased_at = %s, skip_reason = NULL "
                "WHERE id = %s",
                [(to_us(when), ids[iid]) for iid, when in erased if iid in ids],
            )
            self._db.execute("DELETE FROM intents WHERE id = ANY(%s)", (named,))
            self._db.execute(
                "DELETE FROM claims WHERE recording_id = ANY(%s) AND node = %s",
                (sorted(set(ids.values())), self.node),
            )
