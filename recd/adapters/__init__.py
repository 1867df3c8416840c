"""I/O adapters: each module implements one port and imports no other adapter."""
