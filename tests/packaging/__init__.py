"""Tests of what recd ships: the packages, their layout and the files other tools read."""
