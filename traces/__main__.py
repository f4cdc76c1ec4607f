import sys

from traces.runtime.server import main

sys.exit(main())
