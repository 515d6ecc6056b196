"""`python -m lth`: run the verbs, then leave without the interpreter's teardown.

Every artifact is already written (atomically, fsync'ed) when main returns; tearing down
torch and the other extension modules only costs about half a second per job.
"""

import os
import sys

from lth.verbs.cli import main

status = main()
sys.stdout.flush()
sys.stderr.flush()
os._exit(status)
