"""Run the command line with ``python -m simulacra``."""

import sys

from simulacra.cli import main

sys.exit(main())
