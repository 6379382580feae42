"""Tools that act on a finished model: inference optimization, export, FLOP counting, benchmarks, docs.

Nothing in ``kapps`` below this package imports it; it imports the core.
"""
