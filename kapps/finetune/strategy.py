"""Picking the tf.distribute strategy and the mixed-precision policy for a run.

``strategy="auto"``: TPUStrategy when a TPU resolves, MirroredStrategy for two or more
GPUs, OneDeviceStrategy for one GPU, the default strategy on CPU. Any
``tf.distribute.Strategy`` can be passed instead (MultiWorkerMirroredStrategy
configured by ``TF_CONFIG`` included). ``mixed_precision="auto"``: mixed_float16 on
GPUs (compute capability 7.0 or newer), mixed_bfloat16 on TPUs, float32 otherwise.

>>> choose_kind(tpu=False, gpus=2)
'mirrored'
>>> choose_kind(tpu=False, gpus=0)
'default'
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import json
import os
from typing import Any, Iterator

import keras
import tensorflow as tf

__all__ = [
    "resolve_strategy", "choose_kind", "resolve_precision", "precision_policy", "is_chief", "is_tpu",
    "input_shard", "describe", "Hardware",
]

STRATEGY_NAMES = ("auto", "default", "one_device", "mirrored", "tpu", "multi_worker")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")


def choose_kind(*, tpu: bool, gpus: int) -> str:
    """The strategy ``"auto"`` picks for the hardware found."""
    if tpu:
        return "tpu"
    if gpus >= 2:
        return "mirrored"
    if gpus == 1:
        return "one_device"
    return "default"


def _tpu_hint() -> bool:
    """True when this machine looks like it has a TPU (so that resolving one is worth trying)."""
    return bool(os.environ.get("TPU_NAME") or os.environ.get("COLAB_TPU_ADDR")
                or os.environ.get("TPU_ACCELERATOR_TYPE") or glob.glob("/dev/accel*")
                or glob.glob("/dev/vfio/[0-9]*"))


def _connect_tpu() -> Any:
    """A TPUClusterResolver connected and initialized, or None when no TPU resolves."""
    if not _tpu_hint():
        return None
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=os.environ.get("TPU_NAME", "local"))
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return resolver
    except (ValueError, RuntimeError, tf.errors.OpError):
        return None


def resolve_strategy(strategy: Any = "auto") -> tf.distribute.Strategy:
    """A ``tf.distribute.Strategy`` for ``strategy``: an instance, ``"auto"`` or a name.

    Names: ``"default"`` (no distribution), ``"one_device"`` (first GPU, else CPU),
    ``"mirrored"`` (all local GPUs), ``"tpu"``, ``"multi_worker"``
    (MultiWorkerMirroredStrategy from ``TF_CONFIG``). Inside a ``strategy.scope()``,
    ``"auto"`` uses that strategy.

    >>> resolve_strategy("default").num_replicas_in_sync
    1
    """
    if isinstance(strategy, tf.distribute.Strategy):
        return strategy
    if strategy is None:
        strategy = "auto"
    if strategy not in STRATEGY_NAMES:
        raise ValueError(
            "`strategy` must be a tf.distribute.Strategy or one of "
            f"{', '.join(map(repr, STRATEGY_NAMES))}. Received: strategy={strategy!r}"
        )
    gpus = tf.config.list_logical_devices("GPU")
    if strategy == "auto":
        if tf.distribute.has_strategy():
            return tf.distribute.get_strategy()
        resolver = _connect_tpu()
        strategy = choose_kind(tpu=resolver is not None, gpus=len(gpus))
        if strategy == "tpu":
            return tf.distribute.TPUStrategy(resolver)
    if strategy == "default":
        return tf.distribute.get_strategy()
    if strategy == "one_device":
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if strategy == "mirrored":
        return tf.distribute.MirroredStrategy()
    if strategy == "multi_worker":
        if not os.environ.get("TF_CONFIG"):
            raise ValueError("`strategy`='multi_worker' needs the TF_CONFIG environment variable (cluster and task). "
                             "Received: TF_CONFIG unset")
        return tf.distribute.MultiWorkerMirroredStrategy()
    resolver = _connect_tpu()
    if resolver is None:
        raise ValueError("`strategy`='tpu' but no TPU could be resolved (set TPU_NAME, or run on a TPU VM). "
                         "Received: strategy='tpu'")
    return tf.distribute.TPUStrategy(resolver)


def is_tpu(strategy: tf.distribute.Strategy) -> bool:
    """Whether ``strategy`` runs on TPUs (static shapes: padded evaluation batches, weighted metrics)."""
    return isinstance(strategy, (tf.distribute.TPUStrategy, tf.distribute.experimental.TPUStrategy))


def _uses_gpu(strategy: tf.distribute.Strategy) -> bool:
    try:
        devices = tuple(strategy.extended.worker_devices)
    except (RuntimeError, AttributeError):  # the default strategy has no device list
        devices = ()
    if devices and all("CPU" in d.upper() for d in devices):
        return False
    return bool(tf.config.list_logical_devices("GPU"))


def _fast_float16() -> bool:
    for gpu in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        if capability is not None and tuple(capability) < (7, 0):
            return False
    return True


def resolve_precision(mixed_precision: Any, strategy: tf.distribute.Strategy) -> str:
    """The Keras dtype policy name for ``mixed_precision`` (``"auto"``, None/False, True or a policy name)."""
    if mixed_precision in (None, False, "float32"):
        return "float32"
    if mixed_precision not in PRECISIONS and mixed_precision is not True:
        raise ValueError(
            f"`mixed_precision` must be one of {', '.join(map(repr, PRECISIONS))}, True, False or None. "
            f"Received: mixed_precision={mixed_precision!r}"
        )
    if mixed_precision in ("mixed_float16", "mixed_bfloat16"):
        return mixed_precision
    if is_tpu(strategy):
        return "mixed_bfloat16"
    if _uses_gpu(strategy) and _fast_float16():
        return "mixed_float16"
    if mixed_precision is True:
        return "mixed_bfloat16"
    return "float32"


@contextlib.contextmanager
def precision_policy(name: str) -> Iterator[None]:
    """Build layers under the dtype policy ``name``; the global policy is restored afterwards."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _task() -> tuple[str | None, int, dict]:
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = config.get("task", {})
    return task.get("type"), int(task.get("index", 0)), config.get("cluster", {})


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes checkpoints and outputs (the chief, or worker 0 without a chief)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    task_id = getattr(resolver, "task_id", 0) or 0
    if task_type is None and not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    if task_type is None:
        task_type, task_id, _ = _task()
    if task_type in (None, "chief"):
        return True
    cluster = resolver.cluster_spec().as_dict() if resolver is not None else _task()[2]
    return task_type == "worker" and task_id == 0 and "chief" not in cluster


def input_shard(context: tf.distribute.InputContext, global_batch: int) -> tuple[tuple[int, int], int]:
    """The rows ``(lo, hi)`` of every global batch this input pipeline feeds, and the per-replica batch."""
    per_replica = context.get_per_replica_batch_size(global_batch)
    local_replicas = context.num_replicas_in_sync // context.num_input_pipelines
    lo = context.input_pipeline_id * local_replicas * per_replica
    return (lo, lo + local_replicas * per_replica), per_replica


def describe(strategy: tf.distribute.Strategy) -> str:
    """A short description, e.g. ``'MirroredStrategy, 2 replicas'``."""
    name = type(strategy).__name__
    name = {"_DefaultDistributionStrategy": "default strategy",
            "CollectiveAllReduceStrategy": "MultiWorkerMirroredStrategy"}.get(name, name)
    return f"{name}, {strategy.num_replicas_in_sync} replica(s)"


@dataclasses.dataclass(frozen=True)
class Hardware:
    """What a run trains on: the strategy, the dtype policy, the global batch, whether this process is the chief.

    >>> Hardware.resolve("default", None, batch_size=8).global_batch
    8
    """

    strategy: tf.distribute.Strategy
    policy: str
    chief: bool
    global_batch: int
    tpu: bool

    @classmethod
    def resolve(cls, strategy: Any, mixed_precision: Any, batch_size: int) -> "Hardware":
        strategy = resolve_strategy(strategy)
        return cls(strategy, resolve_precision(mixed_precision, strategy), is_chief(strategy),
                   batch_size * strategy.num_replicas_in_sync, is_tpu(strategy))

    @property
    def replicas(self) -> int:
        return self.strategy.num_replicas_in_sync

    def scope(self) -> contextlib.AbstractContextManager:
        """The strategy's scope with the run's dtype policy: where models, optimizers and variables are made."""
        stack = contextlib.ExitStack()
        stack.enter_context(self.strategy.scope())
        stack.enter_context(precision_policy(self.policy))
        return stack

    def describe(self) -> str:
        return describe(self.strategy)
