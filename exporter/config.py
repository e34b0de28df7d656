"""The exporter's options: one frozen dataclass, saved beside every `.tflite` it writes."""

from __future__ import annotations

import dataclasses
import math

QUANTIZE_MODES = ("int8", "float16", "dynamic", "none")


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """Everything that decides an export.

    Attributes:
        model: A `model.keras` file or a run folder holding one; None means the newest run under `runs_dir`.
        quantize: "int8" (full integer, int8 input and output), "float16", "dynamic" or "none" (float32).
        calibration_samples: Training images used to calibrate int8 ranges. 500 is where the int8 accuracy
            stopped changing in our measurements; more only slows the export.
        max_drop: The gate: the largest allowed accuracy drop against Keras, in percentage points.
        out: Output folder; default is the model's folder.
        seed: Picks the calibration images.
        data: MNIST folder or npz; default $MNIST_DIR, Keras cache, download.
        latency_runs: Single-image invocations timed for `tflite_us_per_image`.
        runs_dir: Where to look for the newest run when `model` is None.
        force: Export a model whose training run did not finish (interrupted, killed), which is
            refused by default: the gate compares TFLite with that model, not with a good one.
    """

    model: str | None = None
    quantize: str = "int8"
    calibration_samples: int = 500
    max_drop: float = 0.2
    out: str | None = None
    seed: int = 0
    data: str | None = None
    latency_runs: int = 3000
    runs_dir: str = "runs/train"
    force: bool = False

    def __post_init__(self) -> None:
        if self.quantize not in QUANTIZE_MODES:
            raise ValueError(f"quantize={self.quantize!r}: choose one of {', '.join(QUANTIZE_MODES)}")
        if self.calibration_samples < 1:
            raise ValueError(f"calibration_samples={self.calibration_samples}: must be at least 1")
        if not (math.isfinite(self.max_drop) and 0 <= self.max_drop <= 100):  # NaN compares false: no gate.
            raise ValueError(f"max_drop={self.max_drop}: must be a number of percentage points from 0 to 100")
        if self.seed < 0:
            raise ValueError(f"seed={self.seed}: must be zero or more")
        if self.latency_runs < 1:
            raise ValueError(f"latency_runs={self.latency_runs}: must be at least 1")

    @property
    def file_stem(self) -> str:
        """`model_int8`, `model_float16`, `model_dynamic` or `model_float32` (for "none")."""
        return "model_" + ("float32" if self.quantize == "none" else self.quantize)
