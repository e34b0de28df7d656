"""Training: data pipeline, schedule, best-on-validation checkpoint, early stopping and Ctrl-C safety."""

from __future__ import annotations

import dataclasses
import datetime
import math
import pathlib
import sys
import time

import keras
import numpy as np

from edge_runtime import files
from edge_runtime import constants
from trainer import augment, data, distribute, model as model_module, nondigits
from trainer.config import TrainConfig


@dataclasses.dataclass
class TrainResult:
    """What a run produced, for the report."""

    model: keras.Model
    history: dict[str, list[float]]
    best_epoch: int
    epochs_run: int
    train_seconds: float
    interrupted: bool
    run_dir: pathlib.Path
    split: data.Split


class AugmentedBatches(keras.utils.PyDataset):
    """Shuffled, optionally distorted batches of uint8 MNIST, as floats in [0, 1].

    Distortion happens per batch with OpenCV (about 1 ms for 128 images), a few percent of a step.
    """

    def __init__(self, images, labels, batch_size: int, seed: int, augment_images: bool):
        super().__init__()
        self.images, self.labels, self.batch_size = images, labels, batch_size
        self.augment_images = augment_images
        self.rng = np.random.default_rng(seed)
        self.options = augment.AugmentOptions()
        self.order = self.rng.permutation(len(images))

    def __len__(self) -> int:
        return math.ceil(len(self.images) / self.batch_size)

    def __getitem__(self, index: int):
        chosen = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        batch = self.images[chosen]
        if self.augment_images:
            batch = augment.augment_batch(batch, self.rng, self.options, self.labels[chosen])
        return to_float(batch), self.labels[chosen]

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(len(self.images))


class KeepBest(keras.callbacks.Callback):
    """Keeps the weights of the best validation epoch and saves them atomically as they improve."""

    def __init__(self, path: pathlib.Path):
        super().__init__()
        self.path, self.best, self.best_epoch, self.best_weights = path, (-1.0, -math.inf), 0, None

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        # Ties on accuracy (common near 99.5%) go to the lower validation loss.
        score = (logs["val_accuracy"], -logs["val_loss"])
        if score > self.best:
            self.best, self.best_epoch = score, epoch + 1
            self.best_weights = self.model.get_weights()
            save_model(self.model, self.path)

    def restore(self) -> None:
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 28, 28, 1) in [0, 1], the model's input."""
    return (images.astype(np.float32) / 255.0)[..., None]


def save_model(model: keras.Model, path: pathlib.Path) -> None:
    """Saves a `.keras` file atomically, so an interrupted save never leaves half a model."""
    with files.atomic_path(path) as temporary:
        model.save(temporary)


def make_run_dir(config: TrainConfig) -> pathlib.Path:
    """Creates a new run folder; an existing name gets a numbered suffix instead of being overwritten."""
    parent = pathlib.Path(config.out)
    parent.mkdir(parents=True, exist_ok=True)
    base = config.name or datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    for attempt in range(1, 1000):
        candidate = parent / (base if attempt == 1 else f"{base}-{attempt}")
        try:
            candidate.mkdir()  # Exclusive: two runs started together never share a folder.
            return candidate
        except FileExistsError:
            continue
    raise FileExistsError(f"{parent / base}: 999 runs of that name exist already; choose another --name")


def num_classes(config: TrainConfig) -> int:
    """Ten digits, plus the "not a digit" class when the config mixes such pieces in."""
    return constants.NUM_CLASSES + (1 if config.not_digit_share > 0 else 0)


def with_not_digits(split: data.Split, share: float, seed: int) -> data.Split:
    """Appends seeded "not a digit" pieces (label 10) to the training and validation parts.

    Pairs of touching digits are drawn from each part's own digits, so validation stays unseen.
    """
    if share <= 0:
        return split
    rng = np.random.default_rng([seed, 10])
    parts = []
    for images, labels in ((split.train_images, split.train_labels), (split.validation_images, split.validation_labels)):
        pieces = nondigits.generate(max(1, int(round(share * len(images)))), rng, images)
        parts += [np.concatenate([images, pieces]),
                  np.concatenate([labels, np.full(len(pieces), constants.NUM_CLASSES, labels.dtype)])]
    return data.Split(*parts)


def compile_model(config: TrainConfig, steps_per_epoch: int) -> keras.Model:
    """Builds the CNN with Adam and a warm-up + cosine learning-rate schedule."""
    network = model_module.build_model(config.widths, config.dropout_rate, stem=config.stem,
                                       num_classes=num_classes(config))
    warmup_steps = int(config.warmup_epochs * steps_per_epoch)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate / 10, decay_steps=max(1, config.epochs * steps_per_epoch - warmup_steps),
        warmup_target=config.learning_rate, warmup_steps=warmup_steps, alpha=0.01)
    # XLA (jit_compile=True) measured 1.7-2.4x slower per epoch for this small CNN on a 2-core CPU.
    network.compile(optimizer=keras.optimizers.Adam(schedule), loss="sparse_categorical_crossentropy",
                    metrics=["accuracy"], jit_compile=False)
    return network


def _distributed(strategy, config: TrainConfig, split):
    """Sharded per-replica batches, and the model built under the strategy with TensorFlow's scaling rules."""
    global_batch = distribute.global_batch_size(config.batch_size, strategy)
    steps = distribute.steps_per_epoch(len(split.train_images), global_batch)
    scaled = dataclasses.replace(config, learning_rate=distribute.scaled_learning_rate(config.learning_rate, strategy))
    with strategy.scope():
        network = compile_model(scaled, steps)
    distribute.build_before_fit(network, split.train_images, split.train_labels, config.batch_size)
    batches = distribute.distributed_batches(strategy, split.train_images, split.train_labels, config.batch_size,
                                             config.seed, config.augment, AugmentedBatches)
    print(f"strategy {config.strategy}: {strategy.num_replicas_in_sync} replica(s), global batch {global_batch}, "
          f"learning rate {scaled.learning_rate:g}, {steps} steps per epoch", file=sys.stderr)
    options = {"steps_per_epoch": steps, "shuffle": False}  # Each shard shuffles itself.
    if config.strategy == "multiworker":  # Equal full batches on every worker, or evaluation hangs or fails.
        options["validation_data"] = distribute.distributed_validation(
            strategy, to_float(split.validation_images), split.validation_labels, config.batch_size)
    return batches, network, options


def fit_keeping_best(network: keras.Model, batches, keep_best, model_path: pathlib.Path, callbacks=(),
                     **fit_options) -> tuple[keras.callbacks.History, float, bool]:
    """Fits, and on Ctrl-C stops and keeps the best weights so far; shared by every training task.

    Args:
        network: The compiled model.
        batches: The training data.
        keep_best: A callback with `restore()` and `best_weights` (e.g. `KeepBest`), already in `callbacks`
            or not; it is added.
        model_path: Where the model is saved when no epoch ended (interrupted before the first).
        callbacks: More Keras callbacks.
        **fit_options: Passed to `fit` (epochs, validation_data, ...).

    Returns:
        The history, the seconds spent and whether training was interrupted.
    """
    history = keras.callbacks.History()
    # Order matters (a callback may add the metric that KeepBest reads): keep_best stays where it is given.
    chosen = [*([] if keep_best in callbacks else [keep_best]), *callbacks, history]
    started, interrupted = time.perf_counter(), False
    try:
        network.fit(batches, callbacks=chosen, verbose=1 if sys.stdout.isatty() else 2, **fit_options)
    except KeyboardInterrupt:
        interrupted = True
        print("\nInterrupted: keeping the best model so far.", file=sys.stderr)
    seconds = time.perf_counter() - started
    keep_best.restore()
    if keep_best.best_weights is None:  # Interrupted before the first epoch ended: keep what there is.
        save_model(network, model_path)
    return history, seconds, interrupted


def train(config: TrainConfig, mnist: data.Mnist, run_dir: pathlib.Path, extra_callbacks=()) -> TrainResult:
    """Trains on the training split, selects on validation, and keeps the best model on Ctrl-C.

    Args:
        config: The run's options.
        mnist: Loaded data; only its training part is used here.
        run_dir: The run folder; `model.keras` is written there each time validation improves.
        extra_callbacks: More Keras callbacks (tests use one to simulate Ctrl-C).
    """
    keras.utils.set_random_seed(config.seed)
    split = with_not_digits(data.split_validation(mnist, config.validation_fraction, config.seed, config.limit),
                            config.not_digit_share, config.seed)
    strategy, fit_options = distribute.make_strategy(config.strategy), {}
    if strategy is None:  # The default: one device, exactly as before --strategy existed.
        batches = AugmentedBatches(split.train_images, split.train_labels, config.batch_size, config.seed,
                                   config.augment)
        network = compile_model(config, len(batches))
    else:
        batches, network, fit_options = _distributed(strategy, config, split)
    keep_best = KeepBest(run_dir / "model.keras")
    callbacks = [keep_best, keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=config.patience)]
    validation = fit_options.pop("validation_data", (to_float(split.validation_images), split.validation_labels))
    history, seconds, interrupted = fit_keeping_best(network, batches, keep_best, run_dir / "model.keras",
                                                     epochs=config.epochs, callbacks=[*callbacks, *extra_callbacks],
                                                     validation_data=validation, **fit_options)
    if strategy is not None:  # The report predicts on each worker alone, without the strategy's collectives.
        network = distribute.undistributed_copy(network, lambda: compile_model(config, 1))
    return TrainResult(network, {key: [float(v) for v in values] for key, values in history.history.items()},
                       keep_best.best_epoch, len(history.history.get("loss", [])), seconds, interrupted,
                       run_dir, split)
