"""Ports: what the service needs from the world, as narrow Protocols, and the records they
exchange.

- ``records``: frozen dataclasses and enums the catalogue stores and returns (intents,
  breakers, requests and items, S3 mirrors, audit marks), and ``Actor``;
- catalogue roles, one Protocol per consumer: ``scanning`` (indexer, retention rules),
  ``sweeping`` (sweep, batches, recovery, breakers), ``legal`` (holds, requests, S3 mirrors),
  ``marks`` (the audit log's check and rebuild at start), ``reader`` (read-only: admin socket,
  scrapes, backups); ``catalogue.Catalogue`` composes every writer role for the composition
  root (``recd.daemon``);
- ``source`` (sources, watchers, tag reader, S3 bucket settings), ``eraser`` (erasers and
  their errors), ``audit`` (the audit log), ``clock`` (clock and telemetry), ``notifier``
  (the daemon's state lines to systemd), ``owners`` (which node serves a source that one node
  at a time may serve), ``together`` (a catalogue change and its audit entry committed as
  one, on a shared catalogue).

The catalogue roles, the sources and the erasers have contract suites in ``tests/contracts``,
run on every implementation (``CATALOGUES`` and ``PLACES`` there). Times are
timezone-aware UTC unless a docstring says otherwise. This package imports only ``recd.core``
and ``recd.errors``, never an adapter; import names from their defining module (nothing is
re-exported here).
"""
