"""``python -m tdwgym`` runs the ``tdwgym`` command."""

import sys

from tdwgym.cli import main

sys.exit(main())
