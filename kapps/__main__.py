"""``python -m kapps`` runs the command line."""

import sys

from kapps.cli import main

sys.exit(main())
