"""The line model's run report: sequence accuracy and character error rate on the fixed line test set, and plots."""

from __future__ import annotations

import dataclasses

import numpy as np

from edge_runtime import files
from trainer import lines_train, report


def line_metrics(truths: list[str], reads: list[str]) -> dict:
    """Sequence accuracy, character error rate, and sequence accuracy per line length."""
    scores = lines_train.sequence_scores(truths, reads)
    per_length = {}
    for length in sorted({len(truth) for truth in truths}):
        chosen = [index for index, truth in enumerate(truths) if len(truth) == length]
        per_length[str(length)] = round(sum(truths[i] == reads[i] for i in chosen) / len(chosen), 5)
    wrong_length = sum(len(truth) != len(read) for truth, read in zip(truths, reads))
    return {
        "test_sequence_accuracy": round(scores["sequence_accuracy"], 6),
        "test_character_error_rate": round(scores["character_error_rate"], 6),
        # The exporter and older tools read test_accuracy; for a line model it is the sequence accuracy.
        "test_accuracy": round(scores["sequence_accuracy"], 6),
        "test_lines": scores["lines"], "test_digits": scores["digits"],
        "test_wrong_digit_count": wrong_length,
        "per_length_sequence_accuracy": per_length,
    }


def plot_line_errors(strips: np.ndarray, truths: list[str], reads: list[str], confidences: np.ndarray,
                     limit: int = 24):
    """The misread test lines, most confident mistakes first, each with its truth and what was read."""
    import matplotlib.pyplot as plt

    wrong = [index for index, (truth, read) in enumerate(zip(truths, reads)) if truth != read]
    wrong = sorted(wrong, key=lambda index: -confidences[index])[:limit]
    rows = max(1, len(wrong))
    figure, axes = plt.subplots(rows, 1, figsize=(6.4, 0.62 * rows + 0.5), squeeze=False)
    for axis in axes.ravel():
        axis.axis("off")
    for axis, index in zip(axes.ravel(), wrong):
        axis.imshow(strips[index], cmap="gray", vmin=0, vmax=1, aspect="equal")
        axis.set_title(f"true {truths[index]}   read {reads[index] or '(nothing)'}   "
                       f"confidence {confidences[index]:.0%}", fontsize=7, loc="left")
    figure.suptitle(f"{len(wrong)} most confident of {sum(t != r for t, r in zip(truths, reads))} misread test lines",
                    fontsize=9)
    figure.tight_layout()
    return figure


def write_line_report(result, mnist, planned_epochs: int | None = None) -> dict:
    """Measures the chosen line model on the fixed line test set and writes metrics, history and plots.

    Args:
        result: The `train.TrainResult` of `lines_train.train_lines`.
        mnist: Loaded MNIST; only its test digits are used, to draw the test lines.
        planned_epochs: The configured maximum, recorded with the outcome.

    Returns:
        The metrics dictionary written to `metrics.json`.
    """
    run_dir = result.run_dir
    outcome = report.training_outcome(result, planned_epochs)
    outcome["best_validation_sequence_accuracy"] = outcome.pop("best_validation_accuracy")
    files.write_json(run_dir / "history.json", result.history)
    files.write_json(run_dir / "metrics.json", {**outcome, "task": "line", "test_accuracy": None,
                                                "test_measured": False})
    test = lines_train.line_test_set(mnist)
    probabilities = result.model.predict(test.strips[..., None], batch_size=250, verbose=0)
    reads = lines_train.decode_batch(probabilities)
    metrics = {"task": "line", **line_metrics(test.texts, reads), **outcome, "test_measured": True,
               "test_set": {"lines": len(test.texts), "seed": lines_train.TEST_SEED, "source": "MNIST test digits",
                            "lengths": "1-12, equally often", "strip": list(test.strips.shape[1:])},
               "training_lines": dataclasses.asdict(lines_train.TRAINING_OPTIONS)}
    files.write_json(run_dir / "metrics.json", metrics)
    report.save_figure(report.plot_learning_curves(result.history, result.best_epoch), run_dir / "learning_curves.png")
    confidences = probabilities.max(axis=2).min(axis=1)
    report.save_figure(plot_line_errors(test.strips, test.texts, reads, confidences), run_dir / "line_errors.png")
    return metrics


def summary_rows(config, result, metrics) -> list[tuple[str, str]]:
    """The end-of-run summary of a line run, for `report.summary_table`."""
    return [
        ("run folder", str(result.run_dir)),
        ("task", f"line ({config.profile} profile, seed {config.seed})"),
        ("epochs", f"{result.epochs_run} run, best {result.best_epoch}" + (" (interrupted)" if result.interrupted else "")),
        ("training time", f"{result.train_seconds:.1f} s"),
        ("parameters", f"{metrics['parameters']:,}"),
        ("best validation sequence accuracy", f"{metrics['best_validation_sequence_accuracy']:.2%}"),
        ("test sequence accuracy", f"{metrics['test_sequence_accuracy']:.2%} of {metrics['test_lines']} lines"),
        ("test character error rate", f"{metrics['test_character_error_rate']:.3%}"),
    ]
