"""Benchmarks of kapps against keras.applications, measured in the same run.

For each model, three worker processes are started one after another (keras.applications,
kapps Functional, kapps Sequential), so that each one's peak resident memory is its own.
Each worker measures, after the same warm-up:

* build time: ``weights=None`` construction at the default input size, with the top;
* weight-load time from one legacy-layout HDF5 file that the parent writes from the
  keras.applications model (``kapps.weights.write_legacy_h5``): Keras'
  ``model.load_weights(file)`` against kapps' ``load_weights_by_name`` (what
  ``weights=PATH`` runs), for each builder;
* inference images/s with ``model.predict_on_batch`` at batch 1 and batch 32, and the
  GFLOP/s this achieves with the registry's FLOPs (one multiply-add = 2 FLOPs);
* peak resident memory (``ru_maxrss``) of the whole process, and its growth after imports.

Then, once its memory figures are taken, each kapps worker also builds the
keras.applications twin (loading the same file) and times the two models in turns,
batch after batch, in the same process: a second inference ratio that a changing
machine load cannot bias. The Functional worker adds :func:`kapps.optimize_for_inference`
to these turns; its speedup is the ratio of median batch times.

Times are the minimum over repeats (builds, loads) or the median over iterations
(inference). The machine's load average is recorded before and after: other
processes on the same cores make every number noisy.

Parts: :mod:`.runner` (the parent: models, weight files, workers, results),
:mod:`.worker` (one side of one model, run as ``python -m kapps.tools.bench.worker``),
:mod:`.timing` (clocks, medians, memory) and :mod:`.report` (the text tables).

>>> import kapps.tools.bench
>>> results = kapps.tools.bench.run(["mobilenet_v2"], quick=True, out=None)  # doctest: +SKIP
"""

from kapps.tools.bench.report import format_table
from kapps.tools.bench.runner import DEFAULT_MODELS, SIDES, choose_models, keras_models, run

__all__ = ["run", "DEFAULT_MODELS", "SIDES", "format_table", "choose_models", "keras_models"]
