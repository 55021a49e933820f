"""`python -m gateway.cli`: the `loragate` command."""

import sys

from gateway.cli import main

sys.exit(main())
