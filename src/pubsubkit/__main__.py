"""``python -m pubsubkit``: the ``pubsubkit`` command."""

import sys

from pubsubkit.cli import main

sys.exit(main())
