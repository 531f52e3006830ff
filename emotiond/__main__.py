import sys

from emotiond.cli import main

sys.exit(main())
