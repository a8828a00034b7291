"""Interpersonal-context amendments and user-belief framings."""
