"""``python -m flowstone_host.cli``: the same as the ``flowstone-host`` script."""

import sys

from .main import main

sys.exit(main())
