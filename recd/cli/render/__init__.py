"""recctl's output: aligned tables for people, JSON for ``--json``. Rendering never reads files or
the clock and never prints; it turns values into text.

``text`` holds what every listing is made of (tables, cells, sizes, times, JSON); the others
render one family of daemon replies each, as ``recd.cli.commands`` has one module per family:
``records`` (status, recordings, policy, scans, breakers), ``holds``, ``requests``, ``delete``
(a request's plan and run), ``scope`` (a hold's or request's scope); ``audit`` renders audit log
entries read from the file.
"""
