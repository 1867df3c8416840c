"""recd: keep call recordings exactly as long as each customer's licence allows."""

__version__ = "0.1.0"
