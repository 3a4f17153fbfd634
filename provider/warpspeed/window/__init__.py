"""The window and its documents: which slice of time a run scores, when it closes, what it carries."""
