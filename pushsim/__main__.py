"""``python -m pushsim``: the same as the ``pushsim`` command."""

import sys

from pushsim.cli import main

sys.exit(main())
