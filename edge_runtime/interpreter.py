"""The TFLite classifier: picks an interpreter backend and turns 28x28 crops into class probabilities."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
import pathlib
import stat
import sys

import numpy as np

from edge_runtime import constants, metadata

try:  # The clip ufunc itself: np.clip's Python wrapper costs about 1.5 µs more per call.
    from numpy._core.umath import clip as _clip
except ImportError:  # numpy < 2
    from numpy.core.umath import clip as _clip

BACKENDS = ("ai_edge_litert.interpreter", "tflite_runtime.interpreter", "tensorflow.lite")
_SIZE = constants.IMAGE_SIZE
_SUPPORTED_INPUT_SHAPES = ((_SIZE, _SIZE), (_SIZE, _SIZE, 1), (_SIZE * _SIZE,))
_SUPPORTED_DTYPES = (np.float32, np.uint8, np.int8)
MAX_MODEL_BYTES = 256 * 1024 * 1024
"""A digit model is well under 1 MB; a bigger file is refused before it is read (`--model /dev/zero`)."""


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
        self.assumed = ""  # what was assumed about the input, for -v
        if input_range is None and not self.description.embedded:
            self._assume_raw_integer_range()
        self.num_classes = self.output.shape[-1]
        if self.input.dtype in (np.uint8, np.int8):
            self._input_limits = (np.iinfo(self.input.dtype).min, np.iinfo(self.input.dtype).max)
        self._batch = self.input.shape[0]
        self._buffers: dict[int, tuple] = {}
        self._auto_output: str | None = None  # output "auto": what the first output looked like
        signature = self.interpreter.get_input_details()[0].get("shape_signature", [1])
        # Only a model exported with a dynamic batch is safe to resize; others run their own batch at a time.
        self.batchable = len(signature) > 0 and int(signature[0]) == -1
        self._check_batch()

    def _assume_raw_integer_range(self) -> None:
        """An integer input without quantization parameters takes raw pixel values, as such models
        are trained on (0..255 for uint8, -128..127 for int8); feeding it 0..1 reads nothing."""
        if self.input.dtype not in (np.uint8, np.int8) or self.input.quantized:
            return
        limits = np.iinfo(self.input.dtype)
        black, white = (float(limits.min), float(limits.max))
        self.description = dataclasses.replace(self.description, input_range=(black, white))
        self.assumed = (f"{self.input.dtype.__name__} input without quantization parameters and no metadata: "
                        f"assumed raw pixel values {black:g}..{white:g} (override with --model-input-range)")

    def classify(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities (N, num_classes) for float (N, 28, 28) images in [0, 1], white digit on black."""
        if len(images) == 0:
            return np.zeros((0, self.num_classes), np.float32)
        if not self.batchable and len(images) != self._batch:
            # A fixed batch of N: N images per call, the last call padded with blank images.
            return np.concatenate([self.classify(_padded(images[start:start + self._batch], self._batch))
                                   [:len(images[start:start + self._batch])]
                                   for start in range(0, len(images), self._batch)])
        self._set_input(self._preprocess(images))
        self.invoke()
        raw = self.interpreter.get_tensor(self.output.index)
        if raw.shape != (len(images), self.num_classes):
            raise ValueError(f"{self.path}: the model returned shape {list(raw.shape)} for {len(images)} "
                             f"image(s); expected [{len(images)},{self.num_classes}]")
        return self._postprocess(raw)

    def invoke(self) -> None:
        self.interpreter.invoke()

    def _preprocess(self, images: np.ndarray) -> np.ndarray:
        """The input tensor for `images`, computed in buffers kept per batch size (no allocation per call).

        The array returned is overwritten by the next call; `_set_input` copies it into the interpreter.
        Each numpy call here costs 0.4-0.8 µs at batch 1, as much as its arithmetic: outputs are passed
        positionally (a keyword costs more) and no temporary is made.
        """
        pixels = np.asarray(images)
        buffers = self._buffers.get(len(pixels))
        if buffers is None:
            buffers = self._make_buffers(len(pixels))
        scratch, typed = buffers
        pixels = pixels.reshape(scratch.shape)
        description = self.description
        if description.polarity == constants.POLARITY_BLACK_ON_WHITE:
            np.subtract(1.0, pixels, scratch)
            pixels = scratch
        black, white = description.input_range
        if black != 0.0 or white != 1.0:
            np.multiply(pixels, white - black, scratch)
            np.add(scratch, black, scratch)
            pixels = scratch
        if typed is None:  # A float model.
            if pixels is not scratch:
                scratch[...] = pixels
            return scratch
        if self.input.quantized:
            # The same float32 operations as `pixels * (1 / scale) + zero_point`, into the buffer.
            np.multiply(pixels, 1.0 / self.input.scale, scratch)
            np.add(scratch, self.input.zero_point, scratch)
        elif pixels is not scratch:  # Raw integer pixels.
            scratch[...] = pixels
        np.rint(scratch, scratch)
        _clip(scratch, self._float_limits[0], self._float_limits[1], scratch)  # Clamped, never wrapped around.
        typed[...] = scratch
        return typed

    def _make_buffers(self, count: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Float scratch and typed input buffers for a batch of `count`; a few sizes are kept (folders vary)."""
        if len(self._buffers) >= 8:
            self._buffers.clear()
        shape = (count,) + tuple(self.input.shape[1:])
        integer = self.input.dtype in (np.uint8, np.int8)
        if integer:
            self._float_limits = tuple(np.float32(limit) for limit in self._input_limits)
        buffers = (np.empty(shape, np.float32), np.empty(shape, self.input.dtype) if integer else None)
        self._buffers[count] = buffers
        return buffers

    def _set_input(self, tensor: np.ndarray) -> None:
        if len(tensor) != self._batch:
            self.interpreter.resize_tensor_input(self.input.index, [len(tensor), *self.input.shape[1:]])
            self.interpreter.allocate_tensors()
            self._batch = len(tensor)
        self.interpreter.set_tensor(self.input.index, tensor)

    def _postprocess(self, raw: np.ndarray) -> np.ndarray:
        if self.output.quantized:  # Temporaries of 10-11 values cost less than calls with out=.
            values = (raw.astype(np.float32) - self.output.zero_point) * self.output.scale
        else:
            values = np.asarray(raw, np.float32)  # get_tensor returned a copy already.
        kind = self.description.output
        temperature = self.description.temperature
        if kind == "auto":
            # Decided on the first output and kept: the check (allclose) costs more than the model.
            if self._auto_output is None:
                self._auto_output = "softmax" if _looks_like_probabilities(values) else "logits"
            kind = self._auto_output
        if kind == "logits":
            return _softmax(values / np.float32(temperature) if temperature != 1.0 else values)
        if temperature != 1.0:  # softmax(log p / T) without the log of a zero
            values = np.power(np.maximum(values, 0.0), np.float32(1.0 / temperature))
            values /= np.maximum(values.sum(axis=-1, keepdims=True), np.float32(1e-30))
        return values

    def _check_batch(self) -> None:
        """A fixed batch must be at least 1 and the same for input and output; checked at load, not mid-batch."""
        if self.input.shape[0] < 1 or (not self.batchable and self.output.shape[0] < 1):
            raise ValueError(f"{self.path}: input shape {list(self.input.shape)} and output shape "
                             f"{list(self.output.shape)} have a batch of 0, so no image can be classified; "
                             f"export the model with batch 1 or a dynamic batch")
        if self.output.shape[0] != self.input.shape[0]:
            raise ValueError(f"{self.path}: the input has a batch of {self.input.shape[0]} but the output a batch "
                             f"of {self.output.shape[0]}; digitkit needs one output row per input image")

    def _check_signature(self) -> None:
        where = f"{self.path}"
        if len(self.interpreter.get_input_details()) != 1 or len(self.interpreter.get_output_details()) != 1:
            raise ValueError(f"{where}: the model has {len(self.interpreter.get_input_details())} inputs and "
                             f"{len(self.interpreter.get_output_details())} outputs; digitkit needs 1 and 1")
        if self.description.extra.get("kind") == "line":
            raise ValueError(f"{where}: this is a CTC line model, not a digit model; give it with --line-model "
                             f"(DigitReader: ReaderOptions(line_model=...))")
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
    try:
        status = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: model file not found") from None
    except OSError as error:
        raise ValueError(f"{path}: cannot be read ({error.strerror or error})") from None
    if stat.S_ISDIR(status.st_mode):
        raise ValueError(f"{path}: is a folder, not a .tflite model file")
    if not stat.S_ISREG(status.st_mode):
        # Opening a pipe blocks until a writer comes; a device such as /dev/zero never ends.
        raise ValueError(f"{path}: is not a regular file (a pipe, device or socket); give a .tflite model file")
    if status.st_size > MAX_MODEL_BYTES:
        raise ValueError(f"{path}: {status.st_size} bytes is above the {MAX_MODEL_BYTES} bytes a model may have "
                         f"(MAX_MODEL_BYTES); a digit model is under 1 MB")
    try:
        with open(path, "rb") as file:
            model_bytes = file.read(MAX_MODEL_BYTES + 1)
    except OSError as error:
        raise ValueError(f"{path}: cannot be read ({error.strerror or error})") from None
    if len(model_bytes) > MAX_MODEL_BYTES:  # It grew after the check.
        raise ValueError(f"{path}: more than {MAX_MODEL_BYTES} bytes (MAX_MODEL_BYTES)")
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


def output_problem(probabilities: np.ndarray) -> str:
    """Why these rows of class probabilities are no reading ("" when they are): a NaN or infinity (a broken
    model or input), or every class equally likely (a model that gives one answer whatever it is shown)."""
    values = np.asarray(probabilities, np.float64)
    if values.size == 0:
        return ""
    if not np.isfinite(values).all():
        return "the model's output is not a number (NaN or infinity); the model is broken or does not fit the input"
    if values.shape[-1] > 1 and (np.ptp(values, axis=-1) <= 1e-6).any():
        return (f"the model gives every one of its {values.shape[-1]} classes the same probability; its output "
                f"carries no reading")
    return ""


def _padded(images: np.ndarray, size: int) -> np.ndarray:
    if len(images) == size:
        return images
    blank = np.zeros((size - len(images),) + tuple(images.shape[1:]), images.dtype)
    return np.concatenate([images, blank])


def _looks_like_probabilities(values: np.ndarray) -> bool:
    return bool(values.min() >= -1e-3 and values.max() <= 1 + 1e-3 and np.allclose(values.sum(axis=-1), 1, atol=0.03))


def _softmax(values: np.ndarray) -> np.ndarray:
    shifted = np.exp(values - values.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)
