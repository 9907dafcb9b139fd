"""`python3 -m chts TOOL ...` runs the tools from a source checkout, as the zipapp does."""

import sys

from chts.dispatch import main

sys.exit(main())
