"""``python -m streams.cli`` = the ``envwatch`` command."""

from streams.cli import main

main()
