"""`python -m recd` runs the `recd` entry point."""

from recd.main import main

raise SystemExit(main())
