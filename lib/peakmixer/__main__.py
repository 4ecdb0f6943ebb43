import sys

from peakmixer.cli import main

sys.exit(main())
