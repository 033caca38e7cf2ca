"""`python -m bot` is `rootcheck`."""

import sys

from bot.cli import main

sys.exit(main())
