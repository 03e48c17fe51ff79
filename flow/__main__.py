"""Run the ``gaussprobe`` command line with ``python -m flow``."""

from flow.cli import main

raise SystemExit(main())
