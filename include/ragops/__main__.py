import sys

from ragops.cli.main import main

sys.exit(main())
