"""The TFLite classifier: picks an interpreter backend and turns 28x28 crops into class probabilities."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
import pathlib
import sys

import numpy as np

from edge_runtime import constants, metadata

BACKENDS = ("ai_edge_litert.interpreter", "tflite_runtime.interpreter", "tensorflow.lite")
_SIZE = constants.IMAGE_SIZE
_SUPPORTED_INPUT_SHAPES = ((_SIZE, _SIZE), (_SIZE, _SIZE, 1), (_SIZE * _SIZE,))
_SUPPORTED_DTYPES = (np.float32, np.uint8, np.int8)


def load_backend() -> tuple[type, str]:
    """The first importable interpreter: LiteRT, then tflite_runtime, then TensorFlow's (heavy) copy.

    Raises:
        ImportError: None is installed; the message says which pip install fixes it.
    """
    for module_name in BACKENDS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        return module.Interpreter, module_name.split(".interpreter")[0]
    raise ImportError("no TFLite interpreter found: pip install ai-edge-litert "
                      "(or tflite-runtime, or tensorflow) to run digitkit models")


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """What the model expects or returns: layout, dtype and affine quantization (scale 0 means float)."""

    index: int
    shape: tuple[int, ...]
    dtype: type
    scale: float
    zero_point: int

    @classmethod
    def from_details(cls, details: dict) -> "TensorSpec":
        scale, zero_point = details.get("quantization", (0.0, 0))
        return cls(details["index"], tuple(int(v) for v in details["shape"]), details["dtype"],
                   float(scale), int(zero_point))

    @property
    def quantized(self) -> bool:
        return self.dtype in (np.uint8, np.int8) and self.scale > 0


class DigitClassifier:
    """Runs a TFLite digit model: `_preprocess` -> `_set_input` -> `invoke` -> `_postprocess`.

    Quantization, layout and dtype are read from the model's tensor details; how pixels map to the
    input (range, polarity) and whether the output is softmax or logits come from the metadata that
    digitkit embeds, or from MNIST defaults, or from the caller's overrides.
    """

    def __init__(self, model_path: str | os.PathLike, num_threads: int = 1, input_range=None,
                 polarity: str | None = None, output: str | None = None):
        """Loads and checks a model.

        Args:
            model_path: A `.tflite` file.
            num_threads: Interpreter threads (1 is fastest per image for these small models).
            input_range: (black, white) float values, overriding the embedded description.
            polarity: "white-on-black" or "black-on-white", overriding the embedded description.
            output: "softmax", "logits" or "auto", overriding the embedded description.

        Raises:
            FileNotFoundError: No such file.
            ValueError: Not a TFLite model, ops the CPU cannot run, or an unsupported signature.
        """
        self.path = pathlib.Path(model_path)
        model_bytes = _read_model_bytes(self.path)
        self.description = _with_overrides(_describe(self.path, model_bytes), input_range, polarity, output)
        interpreter_class, self.backend = load_backend()
        self.interpreter = _make_interpreter(interpreter_class, self.path, model_bytes, num_threads)
        self.input = TensorSpec.from_details(self.interpreter.get_input_details()[0])
        self.output = TensorSpec.from_details(self.interpreter.get_output_details()[0])
        self._check_signature()
        self.num_classes = self.output.shape[-1]
        if self.input.quantized:
            self._input_limits = (np.iinfo(self.input.dtype).min, np.iinfo(self.input.dtype).max)
        self._batch = self.input.shape[0]
        signature = self.interpreter.get_input_details()[0].get("shape_signature", [1])
        # Only a model exported with a dynamic batch is safe to resize; others run one image at a time.
        self.batchable = len(signature) > 0 and int(signature[0]) == -1

    def classify(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities (N, num_classes) for float (N, 28, 28) images in [0, 1], white digit on black."""
        if len(images) == 0:
            return np.zeros((0, self.num_classes), np.float32)
        if not self.batchable and len(images) > self._batch:
            return np.concatenate([self.classify(images[start:start + self._batch])
                                   for start in range(0, len(images), self._batch)])
        self._set_input(self._preprocess(images))
        self.invoke()
        return self._postprocess(self.interpreter.get_tensor(self.output.index))

    def invoke(self) -> None:
        self.interpreter.invoke()

    def _preprocess(self, images: np.ndarray) -> np.ndarray:
        pixels = np.asarray(images, np.float32)
        if self.description.polarity == constants.POLARITY_BLACK_ON_WHITE:
            pixels = 1.0 - pixels
        black, white = self.description.input_range
        if (black, white) != (0.0, 1.0):
            pixels = pixels * (white - black) + black
        pixels = pixels.reshape((len(pixels),) + self.input.shape[1:])
        if not self.input.quantized:
            return pixels.astype(self.input.dtype, copy=False)
        # In place, a few microseconds per call: this runs once per camera frame and per image.
        quantized = pixels * (1.0 / self.input.scale)
        quantized += self.input.zero_point
        np.rint(quantized, out=quantized)
        np.clip(quantized, *self._input_limits, out=quantized)
        return quantized.astype(self.input.dtype)

    def _set_input(self, tensor: np.ndarray) -> None:
        if len(tensor) != self._batch:
            self.interpreter.resize_tensor_input(self.input.index, [len(tensor), *self.input.shape[1:]])
            self.interpreter.allocate_tensors()
            self._batch = len(tensor)
        self.interpreter.set_tensor(self.input.index, tensor)

    def _postprocess(self, raw: np.ndarray) -> np.ndarray:
        values = raw.astype(np.float32)
        if self.output.quantized:
            values = (values - self.output.zero_point) * self.output.scale
        kind = self.description.output
        if kind == "logits" or (kind == "auto" and not _looks_like_probabilities(values)):
            values = _softmax(values)
        return values

    def _check_signature(self) -> None:
        where = f"{self.path}"
        if len(self.interpreter.get_input_details()) != 1 or len(self.interpreter.get_output_details()) != 1:
            raise ValueError(f"{where}: the model has {len(self.interpreter.get_input_details())} inputs and "
                             f"{len(self.interpreter.get_output_details())} outputs; digitkit needs 1 and 1")
        if self.input.shape[1:] not in _SUPPORTED_INPUT_SHAPES:
            raise ValueError(f"{where}: input shape {list(self.input.shape)} is not supported; expected "
                             f"[1,28,28], [1,28,28,1] or [1,784]")
        for role, spec in (("input", self.input), ("output", self.output)):
            if spec.dtype not in _SUPPORTED_DTYPES:
                raise ValueError(f"{where}: {role} dtype {np.dtype(spec.dtype).name} is not supported; expected "
                                 f"float32, uint8 or int8")
        if len(self.output.shape) != 2 or self.output.shape[-1] != len(self.description.labels):
            raise ValueError(f"{where}: output shape {list(self.output.shape)} does not match "
                             f"{len(self.description.labels)} labels; expected [1,{len(self.description.labels)}]")


def _read_model_bytes(path: pathlib.Path) -> bytes:
    if not path.exists():
        raise FileNotFoundError(f"{path}: model file not found")
    if path.is_dir():
        raise ValueError(f"{path}: is a folder, not a .tflite model file")
    model_bytes = path.read_bytes()
    if len(model_bytes) < 8 or model_bytes[4:8] != b"TFL3":
        raise ValueError(f"{path}: not a TensorFlow Lite model (no 'TFL3' identifier; "
                         f"{len(model_bytes)} bytes starting {model_bytes[:8]!r})")
    return model_bytes


def _describe(path: pathlib.Path, model_bytes: bytes) -> metadata.ModelDescription:
    try:
        return metadata.read_description(model_bytes)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error


def _with_overrides(description, input_range, polarity, output) -> metadata.ModelDescription:
    changes = {}
    if input_range is not None:
        if len(input_range) != 2 or input_range[0] == input_range[1]:
            raise ValueError(f"input_range={input_range}: give two different numbers (black, white)")
        changes["input_range"] = (float(input_range[0]), float(input_range[1]))
    if polarity is not None:
        if polarity not in constants.POLARITIES:
            raise ValueError(f"polarity={polarity!r}: choose one of {', '.join(constants.POLARITIES)}")
        changes["polarity"] = polarity
    if output is not None:
        if output not in ("softmax", "logits", "auto"):
            raise ValueError(f"output={output!r}: choose one of softmax, logits, auto")
        changes["output"] = output
    return dataclasses.replace(description, **changes)


@contextlib.contextmanager
def _native_stderr_silenced():
    """Silences the C++ runtime's start-up notices ("INFO: Created TensorFlow Lite XNNPACK delegate"),
    which would otherwise land in every batch's and camera's output; failures still raise in Python."""
    if os.environ.get("DIGITKIT_NATIVE_LOGS"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _make_interpreter(interpreter_class, path: pathlib.Path, model_bytes: bytes, num_threads: int):
    try:
        with _native_stderr_silenced():
            interpreter = interpreter_class(model_content=model_bytes, num_threads=num_threads)
            interpreter.allocate_tensors()
    except (RuntimeError, ValueError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if "custom op" in str(error).lower() or "edgetpu" in str(error).lower():
            raise ValueError(f"{path}: the model uses operations the CPU interpreter cannot run ({message}); "
                             f"an Edge TPU model needs the Edge TPU delegate; export a CPU model with "
                             f"digit-export instead") from error
        raise ValueError(f"{path}: the interpreter cannot load this model ({message})") from error
    return interpreter


def _looks_like_probabilities(values: np.ndarray) -> bool:
    return bool(values.min() >= -1e-3 and values.max() <= 1 + 1e-3 and np.allclose(values.sum(axis=-1), 1, atol=0.03))


def _softmax(values: np.ndarray) -> np.ndarray:
    shifted = np.exp(values - values.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)
