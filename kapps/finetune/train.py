"""``kapps.fine_tune``: transfer learning in two phases, on any tf.distribute strategy.

Phase 1 trains a new head (global pooling, dropout, Dense) on a frozen base; phase 2
unfreezes the top of the base at a lower, decaying learning rate. The base is called
with ``training=False`` and its BatchNormalization layers stay frozen in both phases,
so their statistics never move (the classic fine-tuning trap). Early stopping watches
the validation loss and the best weights of each phase are kept.

A segmentation model (``kapps.segmentation.UNet``, ``DeepLabV3Plus``) trained on images with
masks goes through the same phases: its decoder first on the frozen encoder, then the top of
the encoder too (:mod:`~kapps.finetune.segmentation_model`, :mod:`~kapps.finetune.segmentation_data`,
:mod:`~kapps.finetune.segmentation_report`).

This module assembles the parts: :mod:`~kapps.finetune.config` (the checked arguments),
:mod:`~kapps.finetune.strategy` (hardware), :mod:`~kapps.finetune.classifier` (the model),
:mod:`~kapps.finetune.data` (sources and the validation split),
:mod:`~kapps.finetune.checkpoint` (resume), :mod:`~kapps.finetune.loop` (the phases),
:mod:`~kapps.finetune.evaluate` (the final report).
"""

from __future__ import annotations

import functools
import os
import time
from typing import Any, Mapping, Sequence

import keras
import tensorflow as tf

from kapps import _keras_compat as compat
from kapps.finetune import checkpoint as ckpt_lib
from kapps.finetune import data as data_lib
from kapps.finetune.callbacks import TrainingDivergedError
from kapps.finetune.classifier import Family, build_base, build_classifier
from kapps.finetune.config import FineTuneConfig
from kapps.finetune.evaluate import EvaluationReport, predict
from kapps.finetune.freezing import cut_index, set_trainable, weighted_layers
from kapps.blocks.preprocessing import ImagePreprocessing
from kapps.finetune import segmentation_data as seg_data
from kapps.finetune import segmentation_model as seg_model
from kapps.finetune.loop import CLASSIFICATION, RunState, Training, run_phases
from kapps.finetune.result import FineTuneResult
from kapps.finetune.segmentation_report import SegmentationReport, SegmentationResult, confusion_matrix
from kapps.finetune.strategy import Hardware

__all__ = ["fine_tune", "TrainingDivergedError", "ImagePreprocessing", "build_classifier", "set_trainable"]


def fine_tune(
    model: Any,
    train: Any,
    validation: Any = None,
    *,
    weights: Any = "imagenet",
    model_options: Mapping[str, Any] | None = None,
    image_size: Any = None,
    crop_to_aspect_ratio: bool = True,
    batch_size: int = 32,
    epochs: int = 5,
    fine_tune_epochs: int = 5,
    learning_rate: float = 1e-3,
    fine_tune_learning_rate: float | None = None,
    unfreeze: Any = 0.3,
    dropout: float = 0.2,
    augmentation: Any = False,
    class_weight: Any = None,
    validation_split: Any = "auto",
    patience: int | None = 3,
    preprocessing: Any = "auto",
    class_names: Sequence[str] | None = None,
    strategy: Any = "auto",
    mixed_precision: Any = "auto",
    checkpoint_dir: str | os.PathLike | None = None,
    seed: int | None = None,
    deterministic: bool = False,
    on_bad_file: str = "skip",
    top_k: int = 5,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: Any = "auto",
) -> FineTuneResult:
    """Fine-tune an ImageNet model on your own labelled images, in two phases.

    Segmentation: with a segmentation model (a ``keras.Model`` whose output is
    ``(batch, h, w, classes)`` at its input's size, e.g. ``kapps.segmentation.UNet(...)``)
    and images with masks, phase 1 trains the decoder on the frozen encoder and phase 2
    unfreezes the top ``unfreeze`` of the encoder; the loss is cross-entropy plus Keras'
    Dice loss, the metrics pixel accuracy and Keras' MeanIoU, and the returned
    :class:`~kapps.finetune.segmentation_report.SegmentationResult` reports per-class IoU
    and Dice (``dropout``, ``class_weight`` and ``top_k`` do not apply).

    Args:
        model: a registry name (``"mobilenet_v2"``), a Keras model without its
            classifier (used as the base), a segmentation model, or a function returning
            one of these (called in the strategy's scope).
        train: a folder of class sub-folders (``train/ants/*.jpg``, ...) or a
            ``tf.data.Dataset`` of ``(image, label)``: RGB pixels in [0, 255] of any size,
            integer or one-hot labels, batched or not. For segmentation: a folder with
            ``images/`` and ``masks/`` sub-folders (or ``image/`` and ``label/``), each mask
            a PNG of class indices (or 0/255) with its image's file name stem, or a dataset
            of ``(image, mask)`` (see :mod:`~kapps.finetune.segmentation_data`).
        validation: the same kinds; when None, ``validation_split`` of each class of a
            training folder is held out (``"auto"``: 0.2; a number for datasets too).
        weights: ``"imagenet"``, None (random) or the path of a weights file, for a
            registry ``model``. ``model_options`` go to its constructor (e.g. ``{"alpha": 0.5}``).
        image_size: input size (int or (h, w)); default: the family's default size.
        crop_to_aspect_ratio: cut each image's centre to the input's aspect ratio before
            resizing (True, no distortion) or stretch it (False).
        batch_size: per-replica batch; the global batch is ``batch_size * replicas``.
        epochs, learning_rate: phase 1 (head only, Adam, constant rate).
        fine_tune_epochs, fine_tune_learning_rate: phase 2 (default rate: 10x lower,
            cosine decay over the phase); 0 epochs skips the phase.
        unfreeze: what phase 2 trains: a fraction of the base's weighted layers from the
            top (default 0.3), a number of layers, ``"all"``, or a layer or block name
            (``"block_13"``) from which on everything trains. BatchNorm stays frozen.
        dropout: dropout rate before the classifier.
        augmentation: False, True (flip, rotation, zoom, contrast as Keras preprocessing
            layers, run in the input pipeline) or a list of Keras preprocessing layers.
        class_weight: None, ``"balanced"`` or ``{class name or index: weight}``.
        patience: early stopping on the validation loss (training loss without
            validation) after this many epochs without improvement; None: never. The best
            epoch's weights are kept in each phase.
        preprocessing: ``"auto"`` (the registry family's), a mode of
            :data:`kapps.imagenet.MODES`, None, or a function; it runs inside the model.
        class_names: names of the classes of a dataset (default: ``dataset.class_names``
            or "0", "1", ...).
        strategy: ``"auto"``, a strategy name or any ``tf.distribute.Strategy`` (see
            :func:`kapps.finetune.strategy.resolve_strategy`).
        mixed_precision: ``"auto"`` (mixed_float16 on GPU, mixed_bfloat16 on TPU, float32
            on CPU), None/False, True, or a Keras policy name. The classifier stays float32.
        checkpoint_dir: where to keep crash-safe checkpoints; rerunning with the same
            arguments resumes from the last completed epoch (a finished run is reloaded).
        seed: seed of the data order, augmentation, head initialization and Keras'
            global RNG (default: derived from the other arguments, so that reruns and
            the workers of a multi-worker run agree).
        deterministic: also call ``tf.config.experimental.enable_op_determinism()``.
        on_bad_file: ``"skip"`` (warn, listing the paths) or ``"error"``.
        top_k: the k of the top-k accuracy in the report.
        callbacks: more Keras callbacks for ``fit`` in both phases (TensorBoard, timing, ...).
        verbose: ``"auto"``/1 (Keras progress bars), 2 (a line per epoch) or 0.

    Returns:
        A :class:`~kapps.finetune.result.FineTuneResult` (model, class names,
        history of both phases, evaluation report; ``.save(dir)`` writes it all), a
        :class:`~kapps.finetune.segmentation_report.SegmentationResult` for segmentation.

    Raises:
        TrainingDivergedError: the loss became NaN or infinite.
        CheckpointMismatchError: ``checkpoint_dir`` holds a run with other arguments.

    Example (a tiny random model on random images, to show the call)::

        import numpy as np, tensorflow as tf, kapps
        images = np.random.randint(0, 255, (16, 32, 32, 3), "uint8")
        labels = np.arange(16) % 2
        result = kapps.fine_tune(
            "mobilenet_v2", tf.data.Dataset.from_tensor_slices((images, labels)),
            weights=None, model_options={"alpha": 0.35}, image_size=32, batch_size=4,
            epochs=1, fine_tune_epochs=1, validation_split=0.25, verbose=0)
        print(result.report.table())
    """
    config = FineTuneConfig(**locals())  # first statement: locals() are exactly the arguments
    return _run(config)


def _run(config: FineTuneConfig) -> FineTuneResult:
    started = time.perf_counter()
    hardware = Hardware.resolve(config.strategy, config.mixed_precision, config.batch_size)
    masks = seg_model.is_segmentation_run(config)  # segmentation: the data are images with masks
    family = seg_model.resolve_family(config) if masks else Family.resolve(config)
    split = _prepare_data(config, family, masks)
    steps = _steps(split.train.size, hardware, config.batch_size)
    sample_weights = None if masks else data_lib.class_weights(config.class_weight, split.train)
    arguments = _checkpoint_arguments(config, hardware, family, split, sample_weights)
    ckpt = ckpt_lib.Checkpointer(config.checkpoint_dir, arguments, writer=hardware.chief)
    saved = ckpt.load_state()
    state = dict(saved or {})
    seed = _seed(config, ckpt, state)
    if masks:
        base, classifier = _build_segmentation(config, hardware, family, split)
    else:
        base, classifier = _build(config, hardware, family, len(split.train.class_names), seed)
    monitor = "val_loss" if split.validation is not None else "loss"
    val_data = None if split.validation is None else data_lib.evaluation_dataset(
        split.validation, hardware.global_batch, pad_to_batch=hardware.tpu or hardware.replicas > 1)
    training = Training(config, hardware, base, classifier, split.train, val_data, steps, sample_weights, seed,
                        RunState(ckpt, monitor, config.patience, state), state, resumed=saved is not None,
                        objective=seg_model.objective(len(split.train.class_names)) if masks else CLASSIFICATION)
    _announce(training, split, ckpt)
    unfrozen = run_phases(training)
    report_source = split.validation if split.validation is not None else split.train
    report = _report(training, report_source, validation=split.validation is not None)
    run = training.run
    return (SegmentationResult if masks else FineTuneResult)(
        model=classifier, class_names=list(split.train.class_names), history=run.history, report=report,
        image_size=family.image_size, preprocessing=family.mode, strategy=hardware.describe(),
        precision=hardware.policy, global_batch_size=hardware.global_batch, seed=seed,
        phase_epochs=tuple(run.phase_epochs), best_epochs=tuple(run.best_epochs), stopped_early=tuple(run.stopped),
        unfrozen=unfrozen, notes=split.notes, skipped_files=split.skipped,
        resumed_from=(state["phase"], state["epoch"]) if saved else None, checkpoint_dir=ckpt.directory,
        wall_time=time.perf_counter() - started, chief=hardware.chief, _evaluation_source=report_source,
    )


def _prepare_data(config: FineTuneConfig, family: Family, masks: bool) -> data_lib.DataSplit:
    """The training and validation sources: class folders or datasets, or images with masks."""
    crop = bool(config.crop_to_aspect_ratio)
    if masks:
        return seg_data.prepare_masks(config.train, config.validation, config.validation_split, family.image_size,
                                      on_bad_file=config.on_bad_file, seed=config.seed, crop=crop)
    return data_lib.prepare_data(config.train, config.validation, config.validation_split, family.image_size,
                                 class_names=config.class_names, on_bad_file=config.on_bad_file, seed=config.seed,
                                 crop=crop)


def _steps(images: int, hardware: Hardware, batch_size: int) -> int:
    steps = images // hardware.global_batch
    if steps == 0:
        raise ValueError(
            f"`batch_size` must leave at least one full batch: {images} training images, global batch "
            f"{hardware.global_batch} ({batch_size} per replica x {hardware.replicas} replicas). "
            f"Received: batch_size={batch_size}"
        )
    return steps


def _describe_model_argument(model: Any, weights: Any) -> dict[str, Any]:
    if isinstance(model, str):
        identity: Any = model
    elif isinstance(model, keras.Model):
        identity = f"{model.name}:{model.count_params()}"
    elif isinstance(model, functools.partial):  # e.g. partial(UNet, "mobilenet_v2", classes=2): the call itself
        function = model.func
        identity = (f"{getattr(function, '__module__', '')}.{getattr(function, '__qualname__', function)}"
                    f"{model.args!r}{sorted(model.keywords.items())!r}")
    else:
        identity = getattr(model, "__qualname__", repr(model))
    if isinstance(weights, (str, os.PathLike)) and os.path.isfile(weights):
        weights = f"{os.path.abspath(weights)}:{os.path.getsize(weights)}"
    return {"model": identity, "weights": weights}


def _checkpoint_arguments(config: FineTuneConfig, hardware: Hardware, family: Family, split: data_lib.DataSplit,
                          sample_weights: Any) -> dict[str, Any]:
    """What a checkpoint must have been made with to be resumed (its fingerprint)."""
    return {
        **_describe_model_argument(config.model, config.weights), "model_options": dict(config.model_options or {}),
        "image_size": list(family.image_size), "global_batch": hardware.global_batch, "epochs": config.epochs,
        "fine_tune_epochs": config.fine_tune_epochs, "learning_rate": config.learning_rate,
        "fine_tune_learning_rate": config.fine_tune_learning_rate, "unfreeze": config.unfreeze,
        "dropout": config.dropout, "augmentation": [layer.get_config() for layer in config.augment_layers],
        "class_weight": None if sample_weights is None else sample_weights.tolist(),
        "patience": config.patience, "preprocessing": family.mode, "precision": hardware.policy, "seed": config.seed,
        "classes": split.train.class_names, "train_data": split.train.fingerprint(),
        "validation_data": None if split.validation is None else split.validation.fingerprint(),
    }


def _seed(config: FineTuneConfig, ckpt: ckpt_lib.Checkpointer, state: dict[str, Any]) -> int:
    """The run's seed (default: from the arguments' fingerprint, the same on every worker); seeds Keras."""
    seed = config.seed
    if seed is None:  # the same on every worker and every rerun of these arguments
        seed = int(state.get("seed", int(ckpt.fingerprint[:8], 16) % (2**31 - 1)))
    state.setdefault("seed", seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(seed)
    return seed


def _build(config: FineTuneConfig, hardware: Hardware, family: Family, num_classes: int,
           seed: int) -> tuple[keras.Model, keras.Model]:
    with hardware.scope():
        base = build_base(config, family, hardware)
        classifier = build_classifier(base, num_classes, image_size=family.image_size, preprocessing=family.mode,
                                      preprocessing_function=family.function, dropout=config.dropout, seed=seed)
    if config.fine_tune_epochs:
        cut_index(weighted_layers(base), base, config.unfreeze)  # refuse a bad `unfreeze` before any training
    if compat.in_multi_worker_mode(hardware.strategy):
        compat.fit_on_multi_worker(classifier, hardware.strategy)
    return base, classifier


def _build_segmentation(config: FineTuneConfig, hardware: Hardware, family: Family,
                        split: data_lib.DataSplit) -> tuple[keras.Model, keras.Model]:
    """``(encoder, model)`` of a segmentation run; the masks are checked against the model's classes."""
    encoder, model = seg_model.build_segmentation(config, family, hardware)
    classes = int(model.output_shape[-1])
    seg_data.check_classes(split, classes)
    names = [str(name) for name in config.class_names] if config.class_names else [str(i) for i in range(classes)]
    if len(names) != classes:
        raise ValueError(f"`class_names` must name the model's {classes} classes. Received: class_names={names}")
    for source in (split.train, split.validation):
        if source is not None:
            source.class_names = names
    if config.fine_tune_epochs:
        cut_index(weighted_layers(encoder), encoder, config.unfreeze)  # refuse a bad `unfreeze` before training
    if compat.in_multi_worker_mode(hardware.strategy):
        compat.fit_on_multi_worker(model, hardware.strategy)
    return encoder, model


def _announce(t: Training, split: data_lib.DataSplit, ckpt: ckpt_lib.Checkpointer) -> None:
    val = split.validation
    t.say(f"fine_tune: {split.train.size} training images, {val.size if val else 0} validation images, "
          f"{len(split.train.class_names)} classes {split.train.class_names}; {t.hardware.describe()}, "
          f"global batch {t.hardware.global_batch}, {t.hardware.policy}")
    for note in split.notes:
        t.say("  note: " + note)
    if t.resumed:
        state = t.state
        what = "a finished run" if state.get("done") else f"phase {state['phase']}, {state['epoch']} epoch(s) done"
        t.say(f"Resuming from {ckpt.directory}: {what}")


def _report(t: Training, source: data_lib.Source, validation: bool) -> EvaluationReport | SegmentationReport:
    dataset = data_lib.evaluation_dataset(source, t.hardware.global_batch)
    name = "validation" if validation else "training data (no validation data)"
    if isinstance(source, seg_data.MaskSource):
        matrix, images = confusion_matrix(t.classifier, dataset, len(t.train.class_names))
        report: Any = SegmentationReport.from_confusion(matrix, t.train.class_names, num_samples=images, dataset=name)
    else:
        labels, scores = predict(t.classifier, dataset)
        report = EvaluationReport.from_predictions(labels, scores, t.train.class_names, top_k=t.config.top_k,
                                                   dataset=name)
    t.say(report.table())
    return report
