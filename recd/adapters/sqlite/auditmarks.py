"""The catalogue's record of the audit log it reflects: mark, checkpoint, segment prints.

Stored as JSON rows of ``meta`` (the role and its codecs: ``recd.adapters._marks``). A mark
that does not decode is corruption (``BadRow``); a checkpoint or prints written by another recd
read as None (checked again from the start).
"""

from __future__ import annotations

from recd.adapters._marks import MetaMarks
from recd.adapters.sqlite.corrupt import guarded
from recd.adapters.sqlite.store import Store


@guarded
class AuditMarks(Store, MetaMarks):
    """Where in the audit log ``SqliteCatalogue`` stands."""
