"""`python3 -m bench` (from the repository root) does what `bench/run` does."""

import sys

from .cli import main

sys.exit(main())
