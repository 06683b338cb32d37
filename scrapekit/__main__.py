"""`python -m scrapekit` runs the command line."""

import sys

from scrapekit.cli import main

sys.exit(main())
