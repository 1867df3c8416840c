"""I/O adapters: each implements ports of ``recd.ports`` and imports no other adapter.

Lives here: ``local/`` (directory sources: fd-relative scan, inotify, the eraser), ``s3/``
(S3-compatible buckets as sources and erasers), ``sqlite/`` (the catalogue), ``auditlog/`` (the
audit log on disk), ``tags`` (audio tags through mutagen), ``clock``, ``systemd`` (sd_notify),
``snapshot`` (the state directory's backup), and two shared mixins (``_closing``,
``_erasing``). The composition root builds them (``recd.daemon.build``); boto3 and mutagen are
imported only when a configuration needs them.

May import: ``recd.ports``, ``recd.config``, ``recd.core``, ``recd.durable`` and ``recd.errors``.
Never ``service``, ``daemon`` or ``cli``; one adapter package never imports another (the
import-linter contract "adapters are independent").
"""
