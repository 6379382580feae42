"""Tools that act on a finished model: inference optimization, export, FLOP counting, benchmarks, docs.

Nothing in ``kapps`` below this package imports it; it imports the core.
"""

#: What ``kapps.export`` writes (stated here, without imports, so ``kapps export --help`` needs no Keras).
EXPORT_FORMATS = ("savedmodel", "tflite", "tflite-int8", "onnx")
#: The runtimes ``kapps.compile`` runs a model on (``--runtime`` of ``kapps predict``, ``validate``, ``bench``).
RUNTIMES = ("keras", "litert", "litert-int8", "onnxruntime")
