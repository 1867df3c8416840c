"""Text that is safe to show a person: every character that could forge or hide something
escaped (SPEC section 8's log lines, recctl's tables).

File names come from users who can write to a recording tree. A newline in one would start a new
log line (journald makes it a separate entry), an escape sequence would colour or rewrite the
terminal, a bidi override (U+202E) would show a name backwards, and a byte that is not UTF-8
arrives as a lone surrogate (``os.fsdecode``'s ``surrogateescape``). ``printable`` shows each of
them as a visible escape; printable text, including non-ASCII letters, stays as it is.
"""

from __future__ import annotations

#: The licence label of a recording no rule classified: its breaker's key (catalogue, audit,
#: replay), the ``licence`` label of its metrics, and what recctl's tables show for a ``null``
#: licence in a reply.
UNCLASSIFIED = "(unclassified)"


def _escape(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, as surrogateescape carries it
        return f"\\x{code - 0xDC00:02x}"
    return char.encode("unicode_escape").decode("ascii")


def printable(text: str) -> str:
    """``text`` with every non-printable character (control, format such as a bidi override,
    line or paragraph separator, lone surrogate) escaped: ``\\n``, ``\\x1b``, ``\\u202e``; an
    undecodable byte of a file name as ``\\xff``."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def printable_lines(text: str, indent: str = "") -> str:
    """``printable`` for text made of lines (a traceback): each line escaped and prefixed with
    ``indent``, newlines kept. An indented line cannot pass for a record of its own, even when
    an exception's message carried a newline and a fake level."""
    return "\n".join(indent + printable(line) for line in text.split("\n"))


def plural(n: int, one: str, many: str | None = None) -> str:
    """``1 hold``, ``2 holds``; ``many`` for a plural that is not ``one`` + s."""
    return f"{n} {one if n == 1 else (many or one + 's')}"
