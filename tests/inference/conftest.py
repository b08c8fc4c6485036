"""Fixtures for the inference tests; the helpers live in `_inference_helpers.py`.

Test modules import helpers from `_inference_helpers` (a unique module name), never
from `conftest`: several test folders have a conftest.py, and `import conftest`
would pick whichever was imported last.
"""

from _inference_helpers import *  # noqa: F403  (re-exports the fixtures)
