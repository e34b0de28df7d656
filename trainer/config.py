"""The trainer's options: one frozen dataclass that the CLI fills and every run saves beside its model."""

from __future__ import annotations

import dataclasses

# Mirrors trainer.model.STEMS; kept here so that reading a config never imports Keras.
STEMS = ("conv5", "s2d", "stride2")
# Mirrors trainer.distribute.STRATEGIES, for the same reason.
STRATEGIES = ("default", "mirrored", "multiworker")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run.

    Attributes:
        epochs: Maximum number of epochs (early stopping may end sooner).
        batch_size: Images per gradient step.
        learning_rate: Peak learning rate of the warm-up + cosine schedule.
        warmup_epochs: Epochs of linear warm-up to the peak.
        validation_fraction: Share of the training set held out for model selection.
        patience: Epochs without a better validation accuracy before stopping.
        seed: Seeds weights, shuffling, the validation split and augmentation.
        augment: Whether to distort training images (rotation, shift, scale, thickness, blur).
        limit: Train and validate on only this many samples (smoke runs).
        widths: Filters of the three convolutions.
        not_digit_share: Extra "not a digit" pieces (an eleventh class, see trainer/nondigits.py), as a share
            of the training set; 0 trains the ten digits alone.
        stem: How the first block reaches 12x12: one of trainer.model.STEMS ("conv5", "s2d", "stride2").
        dropout_rate: Dropout before the classifier.
        out: Parent folder of run folders.
        name: Run folder name; default is the start time. An existing name gets a numbered suffix.
        data: Folder of IDX files or an mnist.npz; default is $MNIST_DIR, the Keras cache, then a download.
        profile: "default" or "quick", recorded for the report.
        strategy: "default" (one device, as always), "mirrored" or "multiworker" (tf.distribute; see
            trainer/distribute.py: --batch-size is per replica, the learning rate scales with the replicas).
        task: "digit" (the single-digit CNN) or "line" (the CTC line model over strips of digits,
            trainer/lines_train.py); a line run takes its defaults from LINE_PROFILES.
        steps_per_epoch: Batches per epoch for the line task, whose lines are drawn on the fly
            (None: one pass over the training set, the digit task).
        lead_in_share: Line task only: share of the training digits' 1s given a long lead-in stroke
            (`augment.add_lead_ins`; the line profiles give `LINE_LEAD_IN_SHARE`, the packaged line
            model's; 0: none; see `lines_train`).
    """

    epochs: int = 12
    batch_size: int = 128
    learning_rate: float = 4e-3
    warmup_epochs: float = 1.0
    validation_fraction: float = 0.1
    patience: int = 4
    seed: int = 0
    augment: bool = True
    limit: int | None = None
    widths: tuple[int, int, int] = (24, 48, 64)
    stem: str = "conv5"
    not_digit_share: float = 0.1
    dropout_rate: float = 0.1
    out: str = "runs/train"
    name: str | None = None
    data: str | None = None
    profile: str = "default"
    task: str = "digit"
    strategy: str = "default"
    steps_per_epoch: int | None = None
    lead_in_share: float = 0.0

    def __post_init__(self) -> None:
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "patience": self.patience}
        for field, value in positive.items():
            if value < 1:
                raise ValueError(f"{field}={value}: must be at least 1")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate={self.learning_rate}: must be positive")
        if not 0.0 < self.validation_fraction <= 0.5:
            raise ValueError(f"validation_fraction={self.validation_fraction}: must be in (0, 0.5]")
        if not 0.0 <= self.dropout_rate < 1.0:
            raise ValueError(f"dropout_rate={self.dropout_rate}: must be in [0, 1)")
        if self.limit is not None and self.limit < 20:
            raise ValueError(f"limit={self.limit}: must be at least 20 (some to train, some to validate)")
        if not 0.0 <= self.not_digit_share <= 1.0:
            raise ValueError(f"not_digit_share={self.not_digit_share}: must be in [0, 1]")
        if self.stem not in STEMS:
            raise ValueError(f"stem={self.stem!r}: choose one of {', '.join(STEMS)}")
        if self.profile not in PROFILES:
            raise ValueError(f"profile={self.profile!r}: choose one of {', '.join(PROFILES)}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy={self.strategy!r}: choose one of {', '.join(STRATEGIES)}")
        if self.task not in TASKS:
            raise ValueError(f"task={self.task!r}: choose one of {', '.join(TASKS)}")
        if self.task == "line" and (self.steps_per_epoch is None or self.steps_per_epoch < 1):
            raise ValueError(f"steps_per_epoch={self.steps_per_epoch}: the line task needs at least 1")
        if not 0.0 <= self.lead_in_share <= 1.0:
            raise ValueError(f"lead_in_share={self.lead_in_share}: must be in [0, 1]")
        if self.lead_in_share and self.task != "line":
            raise ValueError(f"lead_in_share={self.lead_in_share}: applies to the line task only (--task line)")
        if not 0 <= self.seed < 2**32:  # NumPy's legacy seeding, which Keras calls, takes 32 bits.
            raise ValueError(f"seed={self.seed}: must be in [0, 2**32)")
        if self.name is not None:
            check_run_name(self.name)


def check_run_name(name: str) -> None:
    """Refuses a run folder name that is not one plain path component, so a run stays inside `out`.

    Raises:
        ValueError: Empty, "." or "..", a path separator, a control character, or too long.
    """
    if name in ("", ".", ".."):
        raise ValueError(f"name={name!r}: must be a folder name, not empty, '.' or '..'")
    if "/" in name or "\\" in name:
        raise ValueError(f"name={name!r}: must be a single folder name without '/' or '\\'; "
                         f"use --out for the parent folder")
    if any(ord(character) < 32 or ord(character) == 127 for character in name):
        raise ValueError(f"name={name!r}: must not hold control characters")
    if len(name.encode("utf-8", "surrogateescape")) > 200:  # File systems allow 255 bytes, less the "-999" suffix.
        raise ValueError(f"name={name[:20]!r}...: {len(name)} characters; at most 200 bytes")


PROFILES = {
    "default": {},
    # Under a minute here: the 16-32-64 network (0.86 M multiply-adds, about 30% faster per epoch than
    # the default's 1.63 M), 3 epochs, bigger batches, no distortion; 99.2-99.4% on MNIST.
    "quick": {"epochs": 3, "batch_size": 256, "learning_rate": 6e-3, "warmup_epochs": 0.5, "augment": False,
              "widths": (16, 32, 64)},
}


TASKS = ("digit", "line")

# The line model's profiles (trainer/lines_train.py): lines are drawn on the fly, so an epoch is a
# fixed number of batches; widths are the five filter counts of trainer/line_model.py. Default: 16
# epochs (3,200 steps) is what fits 10 minutes on 2 shared cores (7.6 min measured at load 2.5-2.9);
# quick: 4 x 75 steps, about 50 s.
LINE_LEAD_IN_SHARE = 0.3
"""The line task's share of training 1s with a long lead-in (since the eleventh session, the packaged line
model's recipe): on the real photos under everyday changes it reads 330 numbers of 440 against 294
without (`scripts/compare_line_models.py`; README, "The line reader")."""

LINE_PROFILES = {
    "default": {"epochs": 16, "steps_per_epoch": 200, "batch_size": 48, "learning_rate": 4e-3,
                "warmup_epochs": 0.5, "patience": 6, "widths": (16, 32, 48, 64, 128), "dropout_rate": 0.1,
                "lead_in_share": LINE_LEAD_IN_SHARE},
    "quick": {"epochs": 4, "steps_per_epoch": 75, "batch_size": 48, "learning_rate": 4e-3, "warmup_epochs": 0.3,
              "patience": 3, "widths": (12, 24, 32, 48, 64), "dropout_rate": 0.05,
              "lead_in_share": LINE_LEAD_IN_SHARE},
}


def from_profile(profile: str, task: str = "digit", **overrides) -> TrainConfig:
    """Builds a config from a named profile of a task, with explicit options (not None) taking precedence."""
    if profile not in PROFILES:
        raise ValueError(f"profile={profile!r}: choose one of {', '.join(PROFILES)}")
    if task not in TASKS:
        raise ValueError(f"task={task!r}: choose one of {', '.join(TASKS)}")
    base = PROFILES[profile] if task == "digit" else {**LINE_PROFILES[profile], "task": task}
    values = {**base, **{key: value for key, value in overrides.items() if value is not None}}
    return TrainConfig(profile=profile, **values)
