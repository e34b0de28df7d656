"""User-data parity: for a fine-tuned run, Keras vs TFLite on the user's own validation crops, beside MNIST parity."""

from __future__ import annotations

import pathlib
import tempfile

import numpy as np

USER_VALIDATION_FILE = "user_validation.npz"  # written by trainer.finetune into the run folder


def measure(model, tflite_bytes: bytes, model_path: pathlib.Path) -> dict:
    """{"user_data": {...}} when the run folder holds the user's validation crops, else {}.

    The `.tflite` runs through edge_runtime's own classifier, as in the MNIST check.
    """
    from exporter import verify

    crops_path = pathlib.Path(model_path).parent / USER_VALIDATION_FILE
    if not crops_path.is_file():
        return {}
    with np.load(crops_path, allow_pickle=False) as saved:
        images, labels = saved["images"].astype(np.float32) / 255.0, saved["labels"]
    if not len(labels):
        return {}
    keras_probabilities = model.predict(images[..., None], batch_size=1000, verbose=0)
    with tempfile.TemporaryDirectory() as scratch:
        candidate = pathlib.Path(scratch) / "candidate.tflite"
        candidate.write_bytes(tflite_bytes)
        tflite = verify.tflite_probabilities(candidate, images)
    keras_predictions, tflite_predictions = keras_probabilities.argmax(axis=1), tflite.argmax(axis=1)
    keras_accuracy = float((keras_predictions == labels).mean())
    tflite_accuracy = float((tflite_predictions == labels).mean())
    return {"user_data": {"source": str(crops_path), "images": int(len(labels)),
                          "keras_accuracy": round(keras_accuracy, 6), "tflite_accuracy": round(tflite_accuracy, 6),
                          "accuracy_drop": round((keras_accuracy - tflite_accuracy) * 100, 4),
                          "agreement": round(float((keras_predictions == tflite_predictions).mean()), 6)}}


def markdown(report: dict) -> str:
    """The user-data lines of the export report ("" for a run that was not fine-tuned)."""
    user = report.get("user_data")
    if not user:
        return ""
    return "\n".join([
        "## User-data parity (the fine-tuning run's validation crops)", "",
        "| | Keras (float) | TFLite |", "|---|---|---|",
        f"| accuracy on {user['images']} user crops | {user['keras_accuracy']:.2%} | {user['tflite_accuracy']:.2%} |",
        "",
        f"Drop {user['accuracy_drop']:+.3f} points; agreement {user['agreement']:.4%}. MNIST parity is above.", ""])
