"""The PostgreSQL catalogue's record of the audit log it reflects: mark, checkpoint, prints.

JSON rows of ``meta``, as in SQLite (the role and its codecs: ``recd.adapters._marks``).
"""

from __future__ import annotations

from recd.adapters._marks import MetaMarks
from recd.adapters.postgres.errors import guarded
from recd.adapters.postgres.store import Store


@guarded
class AuditMarks(Store, MetaMarks):
    """Where in the audit log ``PostgresCatalogue`` stands."""
