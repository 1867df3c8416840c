"""The packaging tests' shared fixtures: ``built_deb``, the .deb built once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.packaging.helpers import PREBUILT, build_deb


@pytest.fixture(scope="session")
def built_deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The path of recd's .deb: ``RECD_TEST_DEB`` when set, else one built from this tree with
    packaging/build-deb (once per session, in a temporary directory; dist/ is left alone)."""
    if PREBUILT is not None:
        deb = Path(PREBUILT)
        assert deb.is_file(), f"RECD_TEST_DEB={PREBUILT}: no such file; unset it or build one"
        return deb
    return build_deb(tmp_path_factory.mktemp("deb"))
