"""`digit-train --strategy`: tf.distribute strategies, TensorFlow's conventions for batch, learning rate, data and saving.

* `default`: no strategy; training runs exactly as before this module existed.
* `mirrored`: `tf.distribute.MirroredStrategy`, one replica per local GPU, or one CPU replica without a GPU.
* `multiworker`: `tf.distribute.MultiWorkerMirroredStrategy`; the cluster comes from the `TF_CONFIG`
  environment variable, as TensorFlow defines it:
  `{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}`.

The conventions (TensorFlow's distributed-training guides):
* `--batch-size` is the batch of one replica; the global batch is it times the replicas in sync, so a step
  on N replicas sees N times the images.
* The learning rate scales with the global batch (the linear scaling rule: Goyal et al., 2017).
* Each worker reads its own shard of the training set (every Nth image, N workers) through
  `distribute_datasets_from_function`, and distorts it with its own seed.
* Only the chief (task "chief", else worker 0) keeps a run folder; the other workers write theirs to a
  temporary folder that is removed, because saving and evaluating are collective steps every worker runs.
"""

from __future__ import annotations

import dataclasses
import json
import os

STRATEGIES = ("default", "mirrored", "multiworker")


@dataclasses.dataclass(frozen=True)
class Role:
    """This process's place in the cluster.

    Attributes:
        workers: Processes that train together (1 without TF_CONFIG).
        index: This worker's shard (0 .. workers - 1).
        chief: Whether this process keeps the run folder.
    """

    workers: int = 1
    index: int = 0
    chief: bool = True


def role(strategy_name: str, environ=os.environ) -> Role:
    """Reads TF_CONFIG for `multiworker` (the other strategies are one process, the chief).

    Raises:
        ValueError: A strategy that does not exist, or TF_CONFIG missing or not TensorFlow's format;
            the message shows an example.
    """
    if strategy_name not in STRATEGIES:
        raise ValueError(f"strategy={strategy_name!r}: choose one of {', '.join(STRATEGIES)}")
    if strategy_name != "multiworker":
        return Role()
    example = ('TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
               '"task": {"type": "worker", "index": 0}}\'')
    text = environ.get("TF_CONFIG")
    if not text:
        raise ValueError(f"--strategy multiworker needs the TF_CONFIG environment variable on every machine, e.g. "
                         f"{example} (index 1 on the second)")
    try:
        settings = json.loads(text)
        cluster, task = settings["cluster"], settings["task"]
        kind, index = task["type"], int(task["index"])
        members = {name: list(addresses) for name, addresses in cluster.items()}
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"TF_CONFIG={text!r}: not TensorFlow's format ({type(error).__name__}: {error}); "
                         f"expected {example}") from None
    if kind not in members or not 0 <= index < len(members[kind]):
        raise ValueError(f"TF_CONFIG task {kind!r} {index}: not in the cluster {members}")
    trainers = members.get("chief", []) + members.get("worker", [])
    if not trainers:
        raise ValueError(f"TF_CONFIG={text!r}: the cluster lists no 'worker' (or 'chief') addresses")
    position = index if kind == "chief" else len(members.get("chief", [])) + index
    chief = kind == "chief" or (kind == "worker" and index == 0 and "chief" not in members)
    return Role(workers=len(trainers), index=position, chief=chief)


def make_strategy(strategy_name: str):
    """The tf.distribute strategy for a name; None for `default` (the undistributed path)."""
    if strategy_name == "default":
        return None
    import tensorflow as tf

    if strategy_name == "mirrored":
        # No GPU: MirroredStrategy runs one replica on the CPU, the documented fallback.
        return tf.distribute.MirroredStrategy()
    role(strategy_name)  # A clear error for a missing or malformed TF_CONFIG, before TensorFlow's own.
    _mean_scalars_across_workers()
    return tf.distribute.MultiWorkerMirroredStrategy()


def global_batch_size(per_replica: int, strategy) -> int:
    """The batch one synchronous step sees across every replica."""
    return per_replica * strategy.num_replicas_in_sync


def scaled_learning_rate(learning_rate: float, strategy) -> float:
    """The linear scaling rule: N replicas in sync take N-times larger batches, so N-times larger steps."""
    return learning_rate * strategy.num_replicas_in_sync


def steps_per_epoch(train_size: int, global_batch: int) -> int:
    """Whole global batches in one pass (every replica must take the same number of steps)."""
    return max(1, train_size // global_batch)


def distributed_batches(strategy, images, labels, per_replica_batch: int, seed: int, augment_images: bool,
                        make_batches):
    """Each input pipeline (one per worker) reads its own shard, batched per replica, endlessly in epochs.

    Args:
        strategy: The tf.distribute strategy.
        images, labels: The whole training split (uint8 images).
        per_replica_batch: Images per replica per step.
        seed: Seeds each shard's shuffling and distortion (plus the shard's index).
        augment_images: Whether to distort.
        make_batches: `trainer.train.AugmentedBatches` (passed in, so this module never imports Keras).
    """
    import tensorflow as tf

    def dataset_for(context):
        shard = slice(context.input_pipeline_id, None, context.num_input_pipelines)
        batches = make_batches(images[shard], labels[shard], per_replica_batch, seed + context.input_pipeline_id,
                               augment_images)

        def generate():
            while True:  # Keras stops each epoch after steps_per_epoch; the shard reshuffles after each pass.
                for index in range(len(batches)):
                    features, targets = batches[index]
                    if len(targets) == per_replica_batch:  # Replicas stay in step only with full batches.
                        yield features, targets
                batches.on_epoch_end()

        signature = (tf.TensorSpec((per_replica_batch, *images.shape[1:], 1), tf.float32),
                     tf.TensorSpec((per_replica_batch,), tf.as_dtype(labels.dtype)))
        return tf.data.Dataset.from_generator(generate, output_signature=signature).prefetch(2)

    return strategy.distribute_datasets_from_function(dataset_for)


def distributed_validation(strategy, images, labels, per_replica_batch: int):
    """The validation set, sharded so that every worker evaluates the same number of full batches.

    Up to one global batch of images at the end is left out: with MultiWorkerMirroredStrategy a worker
    whose last batch is short or empty fails ("Incompatible shapes: [32] vs. [0,14,14,16]", seen here).

    Args:
        images: float32 (N, 28, 28, 1) validation images.
    """
    import tensorflow as tf

    global_batch = global_batch_size(per_replica_batch, strategy)
    usable = len(images) // global_batch * global_batch
    if usable == 0:
        raise ValueError(f"the validation set ({len(images)} images) is smaller than one global batch "
                         f"({global_batch}); use more data or a smaller --batch-size")

    def dataset_for(context):
        shard = slice(context.input_pipeline_id, usable, context.num_input_pipelines)
        return tf.data.Dataset.from_tensor_slices((images[shard], labels[shard])).batch(per_replica_batch,
                                                                                         drop_remainder=True)

    return strategy.distribute_datasets_from_function(dataset_for)


def undistributed_copy(network, make_model):
    """A model built outside any strategy with `network`'s weights (for the report and export)."""
    plain = make_model()
    plain.set_weights(network.get_weights())
    return plain


def build_before_fit(network, images, labels, per_replica_batch: int) -> None:
    """Has Keras build the model's optimizer and metrics from a plain sample batch, not from the first
    distributed batch.

    Keras 3.15's `fit` and `evaluate` first call `strategy.reduce("MEAN", batch)` on a batch of per-replica
    values, which MultiWorkerMirroredStrategy with two or more workers cannot do (seen here: "Attempt to
    convert a value (PerReplica...) to a Tensor"). Building from a sample is what Keras does without a
    strategy; it only needs the shapes.
    """
    import tensorflow as tf

    build = getattr(network, "_maybe_symbolic_build", None)
    if build is None:  # Another Keras: nothing to work around.
        return
    sample = (tf.constant(images[:per_replica_batch, ..., None], tf.float32) / 255.0,
              tf.constant(labels[:per_replica_batch]))
    network._maybe_symbolic_build = lambda iterator=None, data_batch=None: build(data_batch=sample)


def _mean_scalars_across_workers() -> None:
    """Keras 3.15 averages each step's logs across workers with `strategy.reduce("MEAN", value, axis=0)`, which
    fails on the scalar loss and metrics ("Invalid reduction dimension 0 for input with 0 dimensions") once
    there are two workers; this reduces scalars over replicas only (they hold the same synchronised value).
    Installed for `multiworker` runs only, and only where Keras has that function."""
    try:
        from keras.src.backend.tensorflow import trainer as keras_trainer
    except ImportError:
        return
    original = getattr(keras_trainer, "reduce_per_replica", None)
    if original is None or getattr(original, "digitkit_patched", False):
        return
    import tensorflow as tf

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            def mean(value):
                if isinstance(value, tf.distribute.DistributedValues):
                    return strategy.reduce("MEAN", value, axis=None)
                return value

            return tf.nest.map_structure(mean, values)
        return original(values, strategy, reduction)

    reduce_per_replica.digitkit_patched = True
    keras_trainer.reduce_per_replica = reduce_per_replica
