"""The catalogue on SQLite. ``catalogue`` opens, checks and migrates the file and composes
``SqliteCatalogue`` from one mixin per catalogue role (``indexing``, ``sweeping``, ``holding``,
``requesting``, ``mirroring``, ``auditmarks``) over a shared connection (``store``); ``schema``
holds the versioned migrations, ``rows`` and ``queries`` the row codecs and shared queries,
``reader`` the read-only side for the admin socket and scrapes, and ``corrupt`` tells a corrupt
file apart and moves it aside. Imports no other adapter.
"""
