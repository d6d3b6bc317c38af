"""The `amity` command."""
