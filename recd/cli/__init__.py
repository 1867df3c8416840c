"""``recctl``, the administrator's command line: it reaches recordings only through the daemon.

Lives here: ``main`` (the parser and the exit status), ``kit`` (what every command shares),
``client`` (recctl's end of the admin socket), ``auditfile`` (reading an audit log directly,
never through the daemon), ``commands/`` (one module per command group) and ``render/`` (text
and JSON output).

May import: ``recd.protocol``, ``recd.log``, ``recd.errors`` and, for the audit file format
only, ``recd.core.audit``. Never ``daemon``, ``service`` or ``adapters``: every admin action
is authorised by the daemon's peer-credential check and audited there.
"""
