"""The long-running daemon and its entry point, ``recd``: the composition root.

Lives here: ``main`` (the ``recd`` command line), ``loop`` (the lifecycle: start, step, timeout,
reload, stop) and the pieces it wires: ``opening`` (the state at start and reload),
``clockguard``, ``sweeps``, ``runs`` (request runs), ``scans``, ``outage`` (an audit log that
cannot be written), ``logcheck`` (the log against the catalogue), ``publish`` (what other
threads read), ``signals``; ``runtime`` (building the adapters a configuration needs, ``recd
--once``), ``inbox`` (the one queue), ``watching`` (inotify watchers), ``endpoints``,
``control`` and ``serving`` (the admin socket and the metrics port), ``metrics`` (event
instruments), ``collector`` (state at scrape time), ``httpendpoint`` (the metrics port's
HTTP), and ``admin/`` (what each admin command does).

May import everything below it: ``service``, ``adapters``, ``config``, ``ports``, ``protocol``,
``log``, ``core`` and ``errors``. Only this package and ``cli`` configure logging, read the
environment, install signal handlers or end the process. Nothing imports ``daemon``.
"""
