"""Evaluation and the run report: test metrics, per-class scores, confusion matrix, plots, summary table."""

from __future__ import annotations

import pathlib

import matplotlib

matplotlib.use("Agg")  # Reports are files; never open a window, even on a desktop.
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from edge_runtime import constants, files  # noqa: E402


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int = constants.NUM_CLASSES) -> np.ndarray:
    """Counts (true, predicted) pairs: rows are true classes, columns predicted ones (10 is "not a digit")."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels.astype(np.int64), predictions.astype(np.int64)), 1)
    return matrix


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict:
    """Accuracy, mean cross-entropy, per-class precision and recall, and the confusion matrix."""
    predictions = probabilities.argmax(axis=1)
    matrix = confusion_matrix(labels, predictions, max(constants.NUM_CLASSES, probabilities.shape[1]))
    true_positives = np.diag(matrix).astype(np.float64)
    precision = true_positives / np.maximum(matrix.sum(axis=0), 1)
    recall = true_positives / np.maximum(matrix.sum(axis=1), 1)
    picked = probabilities[np.arange(len(labels)), labels.astype(np.int64)]
    return {
        "test_accuracy": float((predictions == labels).mean()),
        "test_loss": float(-np.log(np.clip(picked, 1e-7, 1.0)).mean()),
        "test_count": int(len(labels)),
        "per_class": {constants.LABELS[digit]: {"precision": round(float(precision[digit]), 5),
                                                "recall": round(float(recall[digit]), 5),
                                                "support": int(matrix[digit].sum())}
                      for digit in range(constants.NUM_CLASSES)},
        "confusion_matrix": matrix.tolist(),
        # Test digits the model took for "not a digit" (already counted as errors above).
        "rejected_as_not_digit": int(matrix[:, constants.NUM_CLASSES:].sum()),
    }


def plot_learning_curves(history: dict[str, list[float]], best_epoch: int):
    """Loss and accuracy per epoch for training and validation, with the chosen epoch marked."""
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    for axis, metric in ((loss_axis, "loss"), (accuracy_axis, "accuracy")):
        for prefix, label in (("", "train"), ("val_", "validation")):
            if history.get(prefix + metric):
                axis.plot(epochs, history[prefix + metric], marker="o", label=label)
        if best_epoch:
            axis.axvline(best_epoch, color="grey", linestyle="--", label=f"best epoch {best_epoch}")
        axis.set(xlabel="epoch", title=metric)
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:  # An interrupted first epoch leaves nothing to label.
            axis.legend()
    figure.tight_layout()
    return figure


def plot_confusion_matrix(matrix: np.ndarray):
    """The confusion matrix on a log colour scale, so that the few errors stand out."""
    figure, axis = plt.subplots(figsize=(6, 5.5))
    image = axis.imshow(np.log1p(matrix), cmap="Blues")
    for true in range(len(matrix)):
        for predicted in range(len(matrix)):
            if matrix[true, predicted]:
                color = "white" if true == predicted else "black"
                axis.text(predicted, true, str(matrix[true, predicted]), ha="center", va="center",
                          fontsize=7, color=color)
    axis.set(xlabel="predicted", ylabel="true", title="Confusion matrix (test set)",
             xticks=range(len(matrix)), yticks=range(len(matrix)))
    figure.colorbar(image, ax=axis, label="log(1 + count)")
    figure.tight_layout()
    return figure


def plot_misclassified(images: np.ndarray, labels: np.ndarray, probabilities: np.ndarray, limit: int = 36):
    """A grid of misclassified test digits, most confident mistakes first, with true and predicted labels."""
    predictions = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predictions != labels)
    wrong = wrong[np.argsort(-probabilities[wrong, predictions[wrong]])][:limit]
    columns = 9
    rows = max(1, int(np.ceil(len(wrong) / columns)))
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 1.2, rows * 1.45), squeeze=False)
    for axis in axes.ravel():
        axis.axis("off")
    for axis, index in zip(axes.ravel(), wrong):
        axis.imshow(images[index], cmap="gray")
        axis.set_title(f"true {labels[index]}\npred {predictions[index]} "
                       f"{probabilities[index, predictions[index]]:.0%}", fontsize=7)
    figure.suptitle(f"{len(wrong)} most confident mistakes of {int((predictions != labels).sum())}", fontsize=9)
    figure.tight_layout()
    return figure


def save_figure(figure, path: pathlib.Path) -> None:
    """Saves a figure as PNG atomically and releases its memory."""
    with files.atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=110, format="png")
    plt.close(figure)


def summary_table(rows: list[tuple[str, str]]) -> str:
    """Two aligned columns, for the end-of-run summary in the terminal."""
    width = max(len(key) for key, _ in rows)
    rule = "-" * (width + 3 + max(len(value) for _, value in rows))
    return "\n".join([rule] + [f"{key.ljust(width)} : {value}" for key, value in rows] + [rule])


def training_outcome(result, planned_epochs: int | None = None) -> dict:
    """What training produced, before the test set is measured, and whether the run is complete.

    A run is complete when training ended by itself (all epochs, or early stopping). An interrupted
    run keeps its best model, but `digit-export` refuses it without `--force`: before the first
    epoch ends, that model was never validated.
    """
    outcome = {"complete": not result.interrupted, "interrupted": result.interrupted,
               "epochs_planned": planned_epochs, "epochs_run": result.epochs_run, "best_epoch": result.best_epoch,
               "train_seconds": round(result.train_seconds, 1), "parameters": int(result.model.count_params()),
               "best_validation_accuracy": max(result.history.get("val_accuracy", [0.0]), default=0.0)}
    if result.interrupted:
        of = f" of {planned_epochs}" if planned_epochs else ""
        if result.best_epoch:
            reason = (f"interrupted after {result.epochs_run}{of} epochs; model.keras is epoch {result.best_epoch}, "
                      f"the best on validation so far")
        else:
            reason = (f"interrupted before the first epoch ended (0{of} epochs); model.keras holds weights "
                      f"that were never validated")
        outcome["incomplete_reason"] = reason
    return outcome


def write_run_report(result, test_images: np.ndarray, test_labels: np.ndarray,
                     planned_epochs: int | None = None) -> dict:
    """Evaluates the chosen model on the test set and writes metrics, history and plots to the run folder.

    The test set is only measured here, after the model was chosen on validation. `history.json` and
    a `metrics.json` with the training outcome are written first, so a Ctrl-C during the evaluation
    or the plots loses only what was not measured yet.

    Args:
        result: The `train.TrainResult`.
        test_images: uint8 (N, 28, 28) test digits.
        test_labels: Their labels.
        planned_epochs: The configured maximum, recorded with the outcome.

    Returns:
        The metrics dictionary written to `metrics.json`.
    """
    from trainer import train  # Local: report stays importable without building a model.

    run_dir = result.run_dir
    outcome = training_outcome(result, planned_epochs)
    files.write_json(run_dir / "history.json", result.history)
    files.write_json(run_dir / "metrics.json", {**outcome, "test_accuracy": None, "test_measured": False})
    probabilities = result.model.predict(train.to_float(test_images), batch_size=1000, verbose=0)
    metrics = classification_metrics(test_labels, probabilities)
    metrics.update(outcome, test_measured=True)
    files.write_json(run_dir / "metrics.json", metrics)
    save_figure(plot_learning_curves(result.history, result.best_epoch), run_dir / "learning_curves.png")
    save_figure(plot_confusion_matrix(np.asarray(metrics["confusion_matrix"])), run_dir / "confusion_matrix.png")
    save_figure(plot_misclassified(test_images, test_labels, probabilities), run_dir / "misclassified.png")
    return metrics
