"""The ``flowstone-host`` command line, one module per subcommand."""

from .main import main

__all__ = ["main"]
