"""The admin commands recctl sends over the socket, answered inside the daemon.

Lives here: ``dispatch`` (validate arguments, answer reads, hand changes to the loop), ``legal``
(holds and early-deletion requests) and ``backup`` (the snapshot ``recctl backup`` receives).
Every change goes through the service, so it is authorised by peer credentials and audited.
"""
