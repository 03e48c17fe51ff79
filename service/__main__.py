"""``python -m service``: the same as ``gaussprobe serve``."""

import sys

from service.cli import main

if __name__ == "__main__":
    sys.exit(main())
