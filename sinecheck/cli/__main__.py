"""``python -m sinecheck.cli``: the same as the ``sinecheck`` command."""

import sys

from sinecheck.cli import main

sys.exit(main())
