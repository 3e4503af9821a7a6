"""The ``myevents`` command's entry point: says what to install when the reference app's dependencies are missing.

``pip install pubsubkit`` installs the library alone; the reference app's web stack (Falcon, gunicorn, PyJWT)
comes with ``pip install 'pubsubkit[myevents]'``.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence

__all__ = ["REQUIRED", "main"]

#: The modules the reference app needs beyond pubsubkit, and the distribution of each.
REQUIRED = {"falcon": "falcon", "gunicorn": "gunicorn", "jwt": "PyJWT"}


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``myevents.cli.main``, or exit 2 naming the missing distributions and the command that installs them."""
    missing = [dist for module, dist in REQUIRED.items() if importlib.util.find_spec(module) is None]
    if missing:
        print(
            f"myevents: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed: the reference app"
            " comes with pip install 'pubsubkit[myevents]'",
            file=sys.stderr,
        )
        return 2
    from myevents.cli import main as run

    return run(argv)
