"""`python -m ivr`: the `ivr` command (as `ivr serve --workers` starts its workers)."""

from ivr.cli import main

main()
