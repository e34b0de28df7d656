"""Embeds digitkit's JSON description into a `.tflite` file as a named TFLite metadata buffer."""

from __future__ import annotations

import json

from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.tools import flatbuffer_utils

from edge_runtime import constants, metadata


def embed_description(model_bytes: bytes, description: metadata.ModelDescription) -> bytes:
    """Returns the model with `description` stored under the metadata name "digitkit".

    An existing "digitkit" entry is replaced, so exporting twice never stacks descriptions.
    """
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(model_bytes))
    payload = json.dumps(description.to_json(), sort_keys=True).encode("utf-8")
    existing = [item for item in (model.metadata or []) if _name(item) == constants.METADATA_NAME]
    if existing:  # rewritten in place: a replaced description must not leave its old buffer behind
        model.buffers[existing[0].buffer].data = list(payload)
        for stale in existing[1:]:  # files from before this rule could hold several
            model.buffers[stale.buffer].data = []
        model.metadata = [item for item in model.metadata if _name(item) != constants.METADATA_NAME] + existing[:1]
        return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
    buffer = schema.BufferT()
    buffer.data = list(payload)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = constants.METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata = list(model.metadata or []) + [entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _name(entry) -> str:
    name = entry.name
    return name.decode("utf-8") if isinstance(name, bytes) else str(name)
