"""Fixtures for the training tests; the helpers live in `_training_helpers.py`.

Test modules import helpers from `_training_helpers` (a unique module name), never
from `conftest`: several test folders have a conftest.py, and `import conftest`
would pick whichever was imported last.
"""

from _training_helpers import *  # noqa: F403  (re-exports the fixtures)
