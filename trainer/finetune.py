"""Fine-tuning: adapts a trained model to a user's own labelled digits, with MNIST replay so it does not forget.

The source model keeps its architecture and its number of classes (10 digits, or 11 with "not a
digit"). Each epoch mixes the user's training crops, repeated and distorted, with a fresh random
sample of MNIST training digits; BatchNorm stays frozen (its MNIST statistics are what the rest of
the network was trained against) and the learning rate is small, so the model moves towards the
user's handwriting without losing MNIST. The best epoch on the user's validation data is kept, and
the run folder records accuracy before and after on that data and on the MNIST test set.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib

import keras
import numpy as np

from edge_runtime import constants, files, metadata, usercrops
from trainer import augment, data, finetune_cli, train

GUARD_SIZE = 5000
"""MNIST training digits never replayed, on which each epoch's forgetting is measured."""

NOT_A_DIGIT_SHARE = 0.1
"""For a model with a "not a digit" class: generated non-digit pieces per replayed MNIST digit."""

USER_VALIDATION_FILE = "user_validation.npz"
"""The user's validation crops, kept in the run folder so that `digit-export` can state user-data parity."""


@dataclasses.dataclass(frozen=True)
class FinetuneConfig:
    """Everything that decides a fine-tuning run.

    Attributes:
        user_data: The user's labelled folder or labels CSV.
        source: The model to start from: a `model.keras`, a run folder holding one, or a `.tflite`
            exported into a run folder (its `model.keras` is used).
        validation: A separate labelled folder to validate on; default: a share of `user_data`.
        validation_fraction: Share of the user's crops held out when `validation` is not given.
        epochs: Passes over the user's training crops.
        batch_size: Images per gradient step.
        learning_rate: Peak learning rate (cosine decay to zero); small, so the model adapts, not relearns.
        user_repeats: Distorted copies of each user crop per epoch.
        replay_ratio: MNIST training digits per user crop copy in each epoch (0 turns replay off).
        min_replay: At least this many MNIST digits per epoch when replay is on (a few hundred user
            crops would otherwise bring only a few hundred MNIST digits, too few to hold MNIST).
        max_mnist_drop: Epochs that lose more than this many points on held-out MNIST training digits
            (never replayed; plus generated non-digit pieces for a model with that class) are not kept;
            if every epoch does, the one that loses least is kept.
        augment: Distort the user's crops (rotation, shift, scale, shear, thickness, blur).
        freeze_batchnorm: Keep BatchNorm statistics and scales as trained on MNIST.
        seed: Seeds the split, the replay sample, augmentation and shuffling.
        out: Parent folder of run folders.
        name: Run folder name; default "finetune-" and the start time.
        data: MNIST folder or npz (replay and the MNIST before/after); default $MNIST_DIR, Keras cache.
        polarity: Ink of whole images in `user_data` ("auto", "dark-on-light", "light-on-dark").
    """

    user_data: str
    source: str
    validation: str | None = None
    validation_fraction: float = 0.2
    epochs: int = 6
    batch_size: int = 128
    learning_rate: float = 5e-4
    user_repeats: int = 8
    replay_ratio: float = 1.0
    min_replay: int = 4096
    max_mnist_drop: float = 0.1
    augment: bool = True
    freeze_batchnorm: bool = True
    seed: int = 0
    out: str = "runs/train"
    name: str | None = None
    data: str | None = None
    polarity: str = constants.INK_AUTO

    def __post_init__(self) -> None:
        for field in ("epochs", "batch_size", "user_repeats"):
            if getattr(self, field) < 1:
                raise ValueError(f"{field}={getattr(self, field)}: must be at least 1")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate={self.learning_rate}: must be positive")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction={self.validation_fraction}: must be in (0, 1)")
        if self.replay_ratio < 0:
            raise ValueError(f"replay_ratio={self.replay_ratio}: must be 0 (no replay) or more")
        if self.polarity not in constants.INK_POLARITIES:
            raise ValueError(f"polarity={self.polarity!r}: choose one of {', '.join(constants.INK_POLARITIES)}")


@dataclasses.dataclass(frozen=True)
class UserData:
    """The user's crops as class indices: training and validation."""

    train_images: np.ndarray
    train_labels: np.ndarray
    validation_images: np.ndarray
    validation_labels: np.ndarray
    validation_source: str
    warnings: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Start:
    """What a run starts from, read and checked before its run folder is made (`prepare`)."""

    source_path: pathlib.Path
    model: keras.Model
    labels: tuple[str, ...]
    user: UserData


def resolve_source(source: str) -> pathlib.Path:
    """The `model.keras` to start from (`trainer.finetune_cli.locate_source`, which needs no TensorFlow).

    Raises:
        FileNotFoundError: Nothing there, the packaged model (it ships as TFLite only), or a `.tflite`
            without its Keras model beside it.
        ValueError: Not a model file.
    """
    return finetune_cli.locate_source(source)


def load_source(source: str) -> tuple[pathlib.Path, keras.Model, tuple[str, ...]]:
    """The source's `model.keras` path, the model, and its labels (`class_labels`).

    Raises:
        FileNotFoundError, ValueError: As `resolve_source`, a file Keras cannot load, or outputs without labels.
    """
    source_path = resolve_source(source)
    from exporter.export import load_keras_model  # One loader, one error message, for every tool.

    model = load_keras_model(source_path)
    return source_path, model, class_labels(source_path, int(model.outputs[0].shape[-1]))


def prepare(config: FinetuneConfig) -> Start:
    """Loads the source model and the user's crops (`load_source`, `load_user_data`).

    Raises:
        FileNotFoundError, ValueError: The source or the user's data cannot be fine-tuned.
    """
    source_path, model, labels = load_source(config.source)
    return Start(source_path, model, labels, load_user_data(config, labels))


def mnist_origin(data_path: str | None) -> str:
    """Where `data.load_mnist(data_path)` takes MNIST from: "--data", "$MNIST_DIR=...", "keras cache" or "download".

    Told before loading: once loaded, a download sits in the Keras cache.
    """
    if data_path is not None:
        return "--data"
    if os.environ.get("MNIST_DIR"):
        return f"$MNIST_DIR={os.environ['MNIST_DIR']}"
    return "keras cache" if (data.KERAS_CACHE / data.NPZ_NAME).is_file() else "download"


def _absolute(path: str | os.PathLike | None) -> str | None:
    """`path` made absolute with links resolved, so that a recorded config reads the same from any folder."""
    return None if path is None else str(pathlib.Path(path).resolve())


def class_labels(model_path: pathlib.Path, num_outputs: int) -> tuple[str, ...]:
    """The source model's labels: recorded by its run (config.json, or an exported .tflite beside it),
    else the digits for 10 outputs and the digits plus "not a digit" for 11.

    Raises:
        ValueError: The labels of the model's outputs cannot be told.
    """
    run = model_path.parent
    config_path = run / "config.json"
    if config_path.is_file():
        recorded = json.loads(config_path.read_text(encoding="utf-8")).get("labels")
        if recorded and len(recorded) == num_outputs:
            return tuple(str(label) for label in recorded)
    for exported in sorted(run.glob("*.tflite")):
        description = metadata.read_description(exported.read_bytes())
        if description.embedded and len(description.labels) == num_outputs:
            return description.labels
    if num_outputs == constants.NUM_CLASSES:
        return constants.LABELS
    not_a_digit = getattr(constants, "NOT_A_DIGIT", None)
    if num_outputs == constants.NUM_CLASSES + 1 and not_a_digit:
        return constants.LABELS + (not_a_digit,)
    raise ValueError(f"{model_path}: {num_outputs} outputs, and neither its run's config.json nor an exported "
                     f".tflite beside it names their labels")


def load_user_data(config: FinetuneConfig, labels: tuple[str, ...], crops: usercrops.LabelledCrops | None = None,
                   held: usercrops.LabelledCrops | None = None) -> UserData:
    """The user's crops split into training and validation (or validated on `config.validation`).

    Args:
        config: The run's settings.
        labels: The source model's labels.
        crops, held: `config.user_data` and `config.validation` already read with `labels`
            (`trainer.finetune_cli.check_inputs`); read here when not given.

    Raises:
        FileNotFoundError, ValueError: No usable crop, or too few to hold some out.
    """
    if crops is None:
        crops = usercrops.load(config.user_data, labels, config.polarity)
    index_of = {label: index for index, label in enumerate(labels)}
    images, classes = crops.images, np.array([index_of[label] for label in crops.labels], np.int64)
    warnings = list(crops.warnings)
    if config.validation:
        if held is None:
            held = usercrops.load(config.validation, labels, config.polarity)
        warnings += held.warnings
        return UserData(images, classes, held.images, np.array([index_of[label] for label in held.labels], np.int64),
                        str(config.validation), tuple(warnings))
    if len(classes) < finetune_cli.MIN_USER_CROPS:
        raise ValueError(f"{config.user_data}: {len(classes)} usable crops; fine-tuning needs at least "
                         f"{finetune_cli.MIN_USER_CROPS} (some to train on, some to validate), or give --val FOLDER"
                         + (f". {finetune_cli.skipped_list(warnings)}" if warnings else ""))
    # Whole source files go to one side, so two crops of one photo never validate each other.
    rng = np.random.default_rng(config.seed)
    sources = sorted(set(crops.sources))
    rng.shuffle(sources)
    wanted = max(1, round(len(classes) * config.validation_fraction))
    held_out, count = set(), 0
    for source in sources:
        if count >= wanted:
            break
        held_out.add(source)
        count += crops.sources.count(source)
    mask = np.array([source in held_out for source in crops.sources])
    if mask.all() or not mask.any():  # One source file holds everything: split its crops instead.
        mask = np.zeros(len(classes), bool)
        mask[rng.permutation(len(classes))[:wanted]] = True
    return UserData(images[~mask], classes[~mask], images[mask], classes[mask],
                    f"{config.validation_fraction:.0%} of {config.user_data}", tuple(warnings))


class MixedBatches(keras.utils.PyDataset):
    """Each epoch: the user's crops `user_repeats` times, distorted, plus a fresh MNIST replay sample, shuffled."""

    def __init__(self, user: UserData, mnist_images: np.ndarray, mnist_labels: np.ndarray, config: FinetuneConfig,
                 not_a_digit: int | None = None):
        super().__init__()
        self.user, self.config, self.not_a_digit = user, config, not_a_digit
        self.mnist_images, self.mnist_labels = mnist_images, mnist_labels
        self.rng = np.random.default_rng(config.seed)
        self.options = augment.AugmentOptions()
        wanted = len(user.train_labels) * config.user_repeats * config.replay_ratio
        self.replay = int(round(max(wanted, config.min_replay))) if config.replay_ratio > 0 else 0
        self._build_epoch()

    def _build_epoch(self) -> None:
        user_images = np.repeat(self.user.train_images, self.config.user_repeats, axis=0)
        user_labels = np.repeat(self.user.train_labels, self.config.user_repeats)
        if self.config.augment:
            user_images = augment.augment_batch(user_images, self.rng, self.options)
        chosen = self.rng.choice(len(self.mnist_labels), size=min(self.replay, len(self.mnist_labels)), replace=False)
        replay_images = augment.augment_batch(self.mnist_images[chosen], self.rng, self.options) \
            if self.config.augment else self.mnist_images[chosen]
        images = np.concatenate([user_images, replay_images])
        labels = np.concatenate([user_labels, self.mnist_labels[chosen].astype(np.int64)])
        if self.not_a_digit is not None and self.replay:
            # A model with a "not a digit" class replays that class too, or fine-tuning would erode it.
            from trainer import nondigits

            pieces = nondigits.generate(int(round(self.replay * NOT_A_DIGIT_SHARE)), self.rng,
                                        self.mnist_images[chosen[:2000]])
            images = np.concatenate([images, pieces])
            labels = np.concatenate([labels, np.full(len(pieces), self.not_a_digit, np.int64)])
        order = self.rng.permutation(len(labels))
        self.images, self.labels = images[order], labels[order]

    def __len__(self) -> int:
        return -(-len(self.labels) // self.config.batch_size)

    def __getitem__(self, index: int):
        window = slice(index * self.config.batch_size, (index + 1) * self.config.batch_size)
        return train.to_float(self.images[window]), self.labels[window]

    def on_epoch_end(self) -> None:
        self._build_epoch()


def accuracy(model: keras.Model, images: np.ndarray, labels: np.ndarray) -> float | None:
    if not len(labels):
        return None
    predictions = model.predict(train.to_float(images), batch_size=1000, verbose=0).argmax(axis=1)
    return round(float((predictions == labels).mean()), 6)


class KeepBestOnUser(keras.callbacks.Callback):
    """Keeps the epoch with the best user-validation accuracy (ties: the higher mean log-probability of the
    right class) among those that keep held-out MNIST within `max_drop` points; saves it atomically."""

    def __init__(self, user: UserData, guard_images: np.ndarray, guard_labels: np.ndarray, guard_before: float,
                 max_drop: float, path: pathlib.Path):
        super().__init__()
        self.user, self.path = user, path
        self.guard_images, self.guard_labels = train.to_float(guard_images), guard_labels
        self.guard_before, self.max_drop = guard_before, max_drop
        self.best, self.best_epoch, self.best_weights = None, 0, None
        self.epochs: list[dict] = []

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        probabilities = self.model.predict(train.to_float(self.user.validation_images), batch_size=1000, verbose=0)
        picked = probabilities[np.arange(len(self.user.validation_labels)), self.user.validation_labels]
        user_accuracy = float((probabilities.argmax(axis=1) == self.user.validation_labels).mean())
        guard = float((self.model.predict(self.guard_images, batch_size=1000, verbose=0).argmax(axis=1)
                       == self.guard_labels).mean())
        drop = (self.guard_before - guard) * 100
        within = drop <= self.max_drop + 1e-9
        score = (within, user_accuracy if within else -drop, float(np.log(np.maximum(picked, 1e-7)).mean()))
        self.epochs.append({"epoch": epoch + 1, "user_validation": round(user_accuracy, 6),
                            "mnist_guard": round(guard, 6), "mnist_guard_drop_points": round(drop, 3)})
        if logs is not None:
            logs["user_val_accuracy"], logs["mnist_guard_accuracy"] = user_accuracy, guard
        if self.best is None or score > self.best:
            self.best, self.best_epoch = score, epoch + 1
            self.best_weights = self.model.get_weights()
            train.save_model(self.model, self.path)

    def restore(self) -> None:
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


def finetune(config: FinetuneConfig, mnist: data.Mnist, run_dir: pathlib.Path, start: Start | None = None,
             data_origin: str | None = None) -> dict:
    """Fine-tunes `config.source` on the user's data and writes the run folder.

    Writes `model.keras`, `config.json` (with the labels; its paths absolute, and where MNIST came
    from), `history.json`, `metrics.json` (MNIST test figures, as `digit-train` writes them),
    `finetune.json` (before and after, on the user's validation data and on MNIST test) and
    `user_validation.npz`.

    Args:
        config: The run's settings.
        mnist: MNIST, for replay and the before/after figures.
        run_dir: The run folder, already made.
        start: The source model and the user's crops, already read (`prepare`); read here when not given.
        data_origin: Where MNIST came from (`mnist_origin`, told before loading it); default: told now.

    Returns:
        The contents of `finetune.json`.
    """
    start = start or prepare(config)
    source_path, model, labels, user = start.source_path, start.model, start.labels, start.user
    present = sorted({labels[index] for index in user.train_labels})
    if config.replay_ratio == 0 and len(present) < 2:
        raise ValueError(f"{config.user_data}: only class {present[0]} to train on and replay is off; the model "
                         f"would learn to answer {present[0]} to everything. Add other classes or keep replay on")
    mnist_path = _absolute(mnist.source)
    files.write_json(run_dir / "config.json", {
        **dataclasses.asdict(config), "mode": "finetune", "source_model": _absolute(source_path),
        **{field: _absolute(getattr(config, field)) for field in ("user_data", "source", "validation", "out")},
        "data": mnist_path, "labels": list(labels),
        "user_train_crops": int(len(user.train_labels)), "user_validation_crops": int(len(user.validation_labels)),
        "user_validation_source": user.validation_source, "data_source": mnist_path,
        "data_origin": data_origin or mnist_origin(config.data)})
    np.savez_compressed(run_dir / USER_VALIDATION_FILE, images=user.validation_images,
                        labels=user.validation_labels, class_names=np.array(labels))
    before = {"user_validation": accuracy(model, user.validation_images, user.validation_labels),
              "user_train": accuracy(model, user.train_images, user.train_labels),
              "mnist_test": accuracy(model, mnist.test_images, mnist.test_labels)}
    if config.freeze_batchnorm:
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False  # Keras 3: a frozen BatchNorm also runs in inference mode.
    # MNIST training digits held out of replay guard against forgetting; the test set only reports.
    order = np.random.default_rng(config.seed + 1).permutation(len(mnist.train_labels))
    guard, replay = order[:GUARD_SIZE], order[GUARD_SIZE:]
    guard_images, guard_labels = mnist.train_images[guard], mnist.train_labels[guard].astype(np.int64)
    not_a_digit = getattr(constants, "NOT_A_DIGIT", None)
    not_a_digit_index = labels.index(not_a_digit) if not_a_digit in labels else None
    if not_a_digit_index is not None:
        # The reader drops pieces read as "not a digit": losing that class changes whole-image reads.
        from trainer import nondigits

        pieces = nondigits.generate(int(GUARD_SIZE * NOT_A_DIGIT_SHARE), np.random.default_rng(config.seed + 2),
                                    mnist.train_images[guard[:2000]])
        guard_images = np.concatenate([guard_images, pieces])
        guard_labels = np.concatenate([guard_labels, np.full(len(pieces), not_a_digit_index, np.int64)])
    guard_before = accuracy(model, guard_images, guard_labels)
    batches = MixedBatches(user, mnist.train_images[replay], mnist.train_labels[replay], config, not_a_digit_index)
    schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, decay_steps=config.epochs * len(batches),
                                                      alpha=0.05)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], jit_compile=False)
    keep_best = KeepBestOnUser(user, guard_images, guard_labels, guard_before, config.max_mnist_drop,
                               run_dir / "model.keras")
    history, seconds, interrupted = train.fit_keeping_best(model, batches, keep_best, run_dir / "model.keras",
                                                           epochs=config.epochs)
    after = {"user_validation": accuracy(model, user.validation_images, user.validation_labels),
             "user_train": accuracy(model, user.train_images, user.train_labels),
             "mnist_test": accuracy(model, mnist.test_images, mnist.test_labels)}
    result = {"source_model": str(source_path), "labels": list(labels), "classes_in_user_data": present,
              "user_train_crops": int(len(user.train_labels)), "user_validation_crops": int(len(user.validation_labels)),
              "user_validation_source": user.validation_source, "replay_per_epoch": batches.replay,
              "images_per_epoch": int(len(batches.labels)), "epochs_run": len(history.history.get("loss", [])),
              "best_epoch": keep_best.best_epoch, "train_seconds": round(seconds, 2), "interrupted": interrupted,
              "mnist_guard_before": guard_before, "epochs": keep_best.epochs,
              "mnist_guard_kept": bool(keep_best.best and keep_best.best[0]),
              "before": before, "after": after,
              "mnist_test_change_points": _points(before["mnist_test"], after["mnist_test"]),
              "user_validation_change_points": _points(before["user_validation"], after["user_validation"]),
              "skipped": list(user.warnings)}
    files.write_json(run_dir / "finetune.json", result)
    files.write_json(run_dir / "history.json", {key: [float(v) for v in values] for key, values in history.history.items()})
    # "complete" as digit-train writes it: digit-export refuses an interrupted run without --force.
    files.write_json(run_dir / "metrics.json", {"test_accuracy": after["mnist_test"], "mode": "finetune",
                                                "complete": not interrupted, "interrupted": interrupted,
                                                "user_validation_accuracy": after["user_validation"],
                                                "best_epoch": keep_best.best_epoch, "train_seconds": round(seconds, 2)})
    return result


def _points(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else round((after - before) * 100, 3)


def summary_rows(result: dict, run_dir: pathlib.Path) -> list[tuple[str, str]]:
    def percent(value):
        return "-" if value is None else f"{value:.2%}"

    return [
        ("run folder", str(run_dir)),
        ("source model", result["source_model"]),
        ("user crops", f"{result['user_train_crops']} train, {result['user_validation_crops']} validation "
                       f"({result['user_validation_source']})"),
        ("per epoch", f"{result['images_per_epoch']:,} images ({result['replay_per_epoch']:,} MNIST replay)"),
        ("epochs", f"{result['epochs_run']} run, best {result['best_epoch']}"
                   + (" (interrupted)" if result["interrupted"] else "")),
        ("training time", f"{result['train_seconds']:.1f} s"),
        ("user validation", f"{percent(result['before']['user_validation'])} -> "
                            f"{percent(result['after']['user_validation'])}"),
        ("MNIST test", f"{percent(result['before']['mnist_test'])} -> {percent(result['after']['mnist_test'])}"),
    ]
