"""recctl's output: aligned tables for people, JSON for ``--json``. Rendering never reads files or
the clock and never prints; it turns values into text.
"""
