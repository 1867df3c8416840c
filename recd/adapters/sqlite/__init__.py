"""The catalogue on SQLite. ``catalogue`` opens, checks and migrates the file and composes
``SqliteCatalogue`` from one mixin per catalogue role (``indexing``, ``sweeping``, ``holding``,
``requesting``, ``mirroring``, ``auditmarks``) over a shared connection (``store``); ``schema``
holds the versioned migrations, ``queries`` the shared queries (the row codecs are shared with
the PostgreSQL catalogue: ``recd.adapters._rows``, ``_legalrows``, ``_marks``),
``reader`` the read-only side for the admin socket and scrapes, and ``corrupt`` tells a corrupt
file apart and moves it aside. Imports no other adapter.
"""
