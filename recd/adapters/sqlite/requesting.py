"""The catalogue's early-deletion request role: requests, their items, matching recordings.

Written as on PostgreSQL (``recd.adapters._requests``: a request and its items in one
transaction when restored); read through ``queries``, the codecs.
"""

from __future__ import annotations

from recd.adapters._requests import RequestWrites
from recd.adapters.sqlite.corrupt import guarded
from recd.adapters.sqlite.queries import (
    select_items,
    select_matching,
    select_request,
    select_requests,
)
from recd.adapters.sqlite.store import Store
from recd.core.model import Recording
from recd.core.requeststate import RequestItem, RequestState
from recd.core.scope import Scope
from recd.ports.records import StoredRequest


@guarded
class Requesting(Store, RequestWrites):
    """Early-deletion requests (``ports`` requests role) of ``SqliteCatalogue``."""

    def request(self, request_id: str) -> StoredRequest | None:
        return select_request(self._db, request_id)

    def requests(self, state: RequestState | None = None) -> list[StoredRequest]:
        return select_requests(self._db, state)

    def items(self, request_id: str) -> list[RequestItem]:
        return select_items(self._db, request_id)

    def matching(self, scope: Scope, limit: int) -> list[Recording]:
        return select_matching(self._db, scope, limit)
