"""recd.errors: the one reason text for an OSError."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from recd.errors import RecdError, os_reason


def test_a_failed_call_gives_the_kernels_words(tmp_path: Path) -> None:
    with pytest.raises(OSError) as caught:
        (tmp_path / "none").read_bytes()
    assert os_reason(caught.value) == "No such file or directory"


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        # an adapter's own wording wins (a swapped root says what it found)
        (OSError(errno.ENOENT, "a symlink is now on the path"), "a symlink is now on the path"),
        # an errno without text: the errno's words
        (OSError(errno.ENOSPC, ""), "No space left on device"),
        # no errno at all (an S3 failure, a plain OSError): the message
        (OSError("the bucket refused"), "the bucket refused"),
        (RecdError("not an OSError"), "not an OSError"),
    ],
)
def test_the_reason_of(exc: BaseException, reason: str) -> None:
    assert os_reason(exc) == reason
