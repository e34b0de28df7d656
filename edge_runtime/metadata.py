"""The model's own description: reads digitkit's JSON metadata entry out of a `.tflite` flatbuffer, stdlib only."""

from __future__ import annotations

import dataclasses
import json
import struct

from edge_runtime import constants

# Field slots of the TFLite schema (tensorflow/lite/schema/schema.fbs) that this reader walks.
_MODEL_BUFFERS, _MODEL_METADATA = 4, 6
_METADATA_NAME, _METADATA_BUFFER = 0, 1
_BUFFER_DATA, _BUFFER_OFFSET, _BUFFER_SIZE = 0, 1, 2


@dataclasses.dataclass(frozen=True)
class ModelDescription:
    """How to feed a model and read its output; defaults describe an MNIST-style model.

    Attributes:
        labels: Class names, index-aligned with the output.
        input_range: Float values that black and white map to, before the model's own quantization.
        polarity: "white-on-black" (MNIST) or "black-on-white".
        output: "softmax", "logits" or "auto" (decide from the values).
        temperature: Calibration: probabilities are softmax(logits / temperature), fitted on held-out
            real photos so that a confidence of 0.9 is right about 90% of the time (1: as trained).
        extra: Everything else the file says (version, source run, quantization, ...).
        embedded: Whether this came from the file rather than defaults.
    """

    labels: tuple[str, ...] = constants.LABELS
    input_range: tuple[float, float] = (0.0, 1.0)
    polarity: str = constants.POLARITY_WHITE_ON_BLACK
    output: str = "auto"
    temperature: float = 1.0
    extra: dict = dataclasses.field(default_factory=dict)
    embedded: bool = False

    def to_json(self) -> dict:
        """The JSON object stored in the file."""
        return {"labels": list(self.labels), "input_range": list(self.input_range), "polarity": self.polarity,
                "output": self.output, "temperature": self.temperature, **self.extra}

    @classmethod
    def from_json(cls, value: dict) -> "ModelDescription":
        known = {"labels", "input_range", "polarity", "output", "temperature"}
        polarity = value.get("polarity", constants.POLARITY_WHITE_ON_BLACK)
        if polarity not in constants.POLARITIES:
            raise ValueError(f"embedded polarity {polarity!r} is not one of {', '.join(constants.POLARITIES)}")
        return cls(labels=tuple(str(label) for label in value.get("labels", constants.LABELS)),
                   input_range=tuple(float(v) for v in value.get("input_range", (0.0, 1.0))),
                   polarity=polarity, output=value.get("output", "auto"),
                   temperature=_positive(value.get("temperature", 1.0), "temperature"),
                   extra={key: item for key, item in value.items() if key not in known}, embedded=True)


def _positive(value, name: str) -> float:
    number = float(value)
    if not 0.0 < number < float("inf"):
        raise ValueError(f"embedded {name} {value!r} must be a positive number")
    return number


def read_metadata_entries(model_bytes: bytes) -> dict[str, bytes]:
    """All named metadata buffers of a TFLite flatbuffer.

    Raises:
        ValueError: The bytes are not a well-formed flatbuffer.
    """
    try:
        root = _u32(model_bytes, 0)
        buffers = _vector_of_tables(model_bytes, root, _MODEL_BUFFERS)
        entries = {}
        for metadata in _vector_of_tables(model_bytes, root, _MODEL_METADATA):
            name = _string(model_bytes, metadata, _METADATA_NAME)
            index = _scalar(model_bytes, metadata, _METADATA_BUFFER, "<I", 0)
            if name is not None and index < len(buffers):
                entries[name] = _buffer_data(model_bytes, buffers[index])
        return entries
    except (struct.error, IndexError) as error:
        raise ValueError(f"not a well-formed TFLite flatbuffer ({error})") from error


def read_description(model_bytes: bytes) -> ModelDescription:
    """digitkit's description embedded in the model, or MNIST defaults when there is none."""
    entry = read_metadata_entries(model_bytes).get(constants.METADATA_NAME)
    if entry is None:
        return ModelDescription()
    try:
        return ModelDescription.from_json(json.loads(entry.decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"the embedded '{constants.METADATA_NAME}' metadata is not valid JSON ({error})") from error


def _u32(data: bytes, position: int) -> int:
    return struct.unpack_from("<I", data, position)[0]


def _field(data: bytes, table: int, slot: int) -> int | None:
    """Absolute position of a table field, or None when the field is absent."""
    vtable = table - struct.unpack_from("<i", data, table)[0]
    vtable_size = struct.unpack_from("<H", data, vtable)[0]
    entry = 4 + 2 * slot
    if entry >= vtable_size:
        return None
    offset = struct.unpack_from("<H", data, vtable + entry)[0]
    return table + offset if offset else None


def _scalar(data: bytes, table: int, slot: int, fmt: str, default):
    position = _field(data, table, slot)
    return default if position is None else struct.unpack_from(fmt, data, position)[0]


def _indirect(data: bytes, table: int, slot: int) -> int | None:
    position = _field(data, table, slot)
    return None if position is None else position + _u32(data, position)


def _vector_of_tables(data: bytes, table: int, slot: int) -> list[int]:
    vector = _indirect(data, table, slot)
    if vector is None:
        return []
    elements = vector + 4
    return [elements + 4 * index + _u32(data, elements + 4 * index) for index in range(_u32(data, vector))]


def _string(data: bytes, table: int, slot: int) -> str | None:
    start = _indirect(data, table, slot)
    if start is None:
        return None
    return bytes(data[start + 4: start + 4 + _u32(data, start)]).decode("utf-8", "replace")


def _buffer_data(data: bytes, buffer: int) -> bytes:
    # Models over 2 GB keep buffers after the flatbuffer, addressed by offset and size.
    offset = _scalar(data, buffer, _BUFFER_OFFSET, "<Q", 0)
    if offset > 1:
        return bytes(data[offset: offset + _scalar(data, buffer, _BUFFER_SIZE, "<Q", 0)])
    vector = _indirect(data, buffer, _BUFFER_DATA)
    return b"" if vector is None else bytes(data[vector + 4: vector + 4 + _u32(data, vector)])
