"""The `ivr` command line."""

from ivr.cli.app import main

__all__ = ["main"]
