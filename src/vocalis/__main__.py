"""``python -m vocalis`` (also what ``torchrun -m vocalis`` runs)."""

import sys

from vocalis.cli.main import main

sys.exit(main())
