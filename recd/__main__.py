"""`python -m recd` runs the `recd` entry point."""

from recd.daemon.main import main

raise SystemExit(main())
