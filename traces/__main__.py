import sys

from traces.server import main

sys.exit(main())
