"""The long-running daemon and its entry point, ``recd``: the composition root.

Lives here: ``main`` (the ``recd`` command line), ``loop`` (the lifecycle: start, step, timeout,
reload, stop), ``runtime`` (building the adapters a configuration needs, ``recd --once``),
``inbox`` (the one queue), ``watching`` (inotify watchers), ``control`` and ``serving`` (the
admin socket and the metrics port), ``metrics``, and ``admin/`` (what each admin command does).

May import everything below it: ``service``, ``adapters``, ``config``, ``ports``, ``protocol``,
``log``, ``core`` and ``errors``. Only this package and ``cli`` configure logging, read the
environment, install signal handlers or end the process. Nothing imports ``daemon``.
"""
