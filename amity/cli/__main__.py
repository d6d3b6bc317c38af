"""`python -m amity.cli` runs the `amity` command."""

from .main import main

main()
