"""Writing early-deletion requests and their items (``ports`` requests role), once for both
SQL adapters: a request and its items are written in one transaction when restored. Reading
them stays in each adapter's ``queries`` (their codecs differ per engine)."""

from __future__ import annotations

from collections.abc import Sequence

from recd.adapters._legalrows import REQUEST_COLUMNS, item_data, request_values
from recd.adapters._sql import SharedRole
from recd.core.requeststate import RequestItem
from recd.ports.records import StoredRequest

_PUT_REQUEST = (
    f"INSERT INTO requests ({REQUEST_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) "  # noqa: S608
    "ON CONFLICT (id) DO UPDATE SET licence = excluded.licence, state = excluded.state, "
    "document = excluded.document, digest = excluded.digest, info = excluded.info, "
    "updated = excluded.updated"
)
_PUT_ITEM = (
    "INSERT INTO request_items (request_id, recording_id, outcome, data) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (request_id, recording_id) DO UPDATE SET "
    "outcome = excluded.outcome, data = excluded.data"
)


class RequestWrites(SharedRole):
    """Store requests and items, replacing what is stored under the same ids."""

    def put_request(self, request: StoredRequest) -> None:
        with self._tx():
            self._put_request(request)

    def restore_requests(
        self, requests: Sequence[tuple[StoredRequest, Sequence[RequestItem]]]
    ) -> None:
        with self._tx():
            for request, items in requests:
                self._put_request(request)
                self._put_items(request.id, items)

    def put_items(self, request_id: str, items: Sequence[RequestItem]) -> None:
        with self._tx():
            self._put_items(request_id, items)

    def _put_request(self, request: StoredRequest) -> None:
        self._db.execute(self._q(_PUT_REQUEST), request_values(request))

    def _put_items(self, request_id: str, items: Sequence[RequestItem]) -> None:
        self._db.cursor().executemany(
            self._q(_PUT_ITEM),
            [(request_id, i.recording_id, str(i.outcome), item_data(i)) for i in items],
        )
