import sys

from myevents.entry import main

sys.exit(main())
