"""recctl's command groups, one module each: the parser for the group and one small function per
command that calls the client, prints through ``recd.cli.render`` and returns an exit code.
"""
