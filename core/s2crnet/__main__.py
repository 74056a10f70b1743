import sys

from s2crnet.cli import main

sys.exit(main())
