"""Pure decision code: no I/O, no clock reads, no logging, no environment.

Everything here is given what it decides on (``now`` included): periods and deadlines,
classification, verdicts and the erase method, holds' and requests' scopes, the breaker and
clock guard, the audit chain's form and segments, request documents, signatures and their
replay from the log, backups' manifests, times and text.

May import: the standard library, ``cryptography`` (Ed25519) and ``recd.errors``.
"""
