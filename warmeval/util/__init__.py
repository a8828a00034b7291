"""The leaf layer: file I/O, ids, answer normalisation and safe names, shared by every other part of warmeval.

Modules here import nothing from the rest of warmeval (an import-linter contract in ``.importlinter`` checks it), so
any package may use them without creating a cycle.
"""
