"""The configuration: recd.toml and licences.d/*.toml read once into frozen values.

Lives here: ``load`` (the entry: files -> ``Config``), ``types`` (the frozen values), ``tables``
(reading one TOML table with every problem named by file and key), ``sources`` (the
``[[source]]`` tables), ``licences`` (one licence per file) and ``patterns`` (path patterns for
RE2). Loading has no side effects: nothing is created, opened for writing or logged.

May import: ``recd.core`` and ``recd.errors``. Never ``service``, ``adapters``, ``daemon`` or
``cli``.
"""
