import sys

from myevents.cli import main

sys.exit(main())
