"""``python -m wheelyard``."""

from wheelyard.cli import main

main()
