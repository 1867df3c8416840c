"""Local directory sources: the fd-relative primitives (``safefs``), the scan (``directory``),
live inotify events (``watch``) and the eraser: ``erase`` (prepare, erase, verify, locate),
``checks`` (opening and identity checks), ``probes`` (what the filesystem makes of an
overwrite: its kind, journalling, shared extents, other openers) and ``overwrite`` (the
irreversible steps). Never follows a symlink, never leaves a source root, never crosses a
mount. Imports no other adapter.
"""
