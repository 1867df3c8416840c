"""Local directory sources: the fd-relative primitives (``safefs``), the scan (``directory``),
live inotify events (``watch``) and the eraser (``erase``). Never follows a symlink, never leaves
a source root, never crosses a mount. Imports no other adapter.
"""
