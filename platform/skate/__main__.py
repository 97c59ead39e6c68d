import sys

from skate.cli import main

sys.exit(main())
