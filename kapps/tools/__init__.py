"""Tools that act on a finished model: inference optimization, export, FLOP counting, benchmarks, docs.

Nothing in ``kapps`` below this package imports it; it imports the core.
"""

#: What ``kapps.export`` writes (stated here, without imports, so ``kapps export --help`` needs no Keras).
EXPORT_FORMATS = ("savedmodel", "tflite", "tflite-int8")
