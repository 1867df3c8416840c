"""Use cases: index sources, sweep, recover interrupted erasures; the only writer.

Invariants: an intent is durable (catalogue and audit log) before every irreversible erase;
nothing is erased without an audit entry; the service never imports an adapter, it is given
its ports.
"""
