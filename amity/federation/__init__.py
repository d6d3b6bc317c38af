"""The conversation between nodes (inbox, delivery, remote actors, discovery)."""
