"""`python -m facelive.cli`: the same as the `facelive` command."""

import sys

from facelive.cli import main

sys.exit(main())
