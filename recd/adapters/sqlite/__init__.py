"""The catalogue on SQLite: the writer (``catalogue``), the read-only side for the admin socket
and scrapes (``reader``), the schema and row codecs (``schema``), and a corrupt file told apart
and moved aside (``corrupt``). Imports no other adapter.
"""
