"""The admin commands recctl sends over the socket, answered inside the daemon.

Lives here: ``dispatch`` (the command table and entry; changes handed to the loop), ``args``
(argument checks), ``records`` (the read answers: status, recordings, policy, breakers), ``legal``
(holds and early-deletion requests) and ``backup`` (the snapshot ``recctl backup`` receives).
Every change goes through the service, so it is authorised by peer credentials and audited.
"""
