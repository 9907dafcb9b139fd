"""The zipapp's __main__ (build.py copies this file to the archive's top level).

It replaces shiv's bootstrap, which would import hashlib, zipfile, compileall and
friends and unpack the archive under ~/.shiv on every runc call: our packages are
pure Python and import straight from the archive's site-packages.
"""

import sys

sys.path[0:1] = [sys.path[0] + "/site-packages"]

from chts.dispatch import main  # noqa: E402

sys.exit(main())
