"""One running node: configuration, storage, keys and the HTTP application."""
