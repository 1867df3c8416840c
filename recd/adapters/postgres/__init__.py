"""The catalogue on PostgreSQL, one database that recd on several hosts can share (issue 18).

``catalogue`` connects, migrates (``schema``) and composes ``PostgresCatalogue`` from one mixin
per catalogue role (``indexing``, ``sweeping``, ``holding``, ``requesting``, which holds the S3
mirror too, ``auditmarks``) over a shared connection (``store``); ``queries`` holds the scope,
hold and request queries the writer and ``reader`` share, and ``errors`` names the database in
every error without its password. It holds the same rows as the SQLite catalogue, decoded by
the shared codecs (``recd.adapters._rows``). ``audit`` keeps the audit chain in a table of the
same database (an ``AuditLog`` whose lines are the file's, byte for byte). psycopg is imported
only here, and this package only when ``[catalogue] url`` is set. Imports no other adapter.
"""
