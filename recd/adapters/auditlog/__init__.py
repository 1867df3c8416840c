"""The audit log on disk: the append-only log (``log``), its files, lock and segments
(``files``), and the chain read by offset across segments (``chain``). Imports no other adapter.
"""
