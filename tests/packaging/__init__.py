"""Tests of what recd ships: the Debian package (test_deb), its layout and maintainer scripts."""
