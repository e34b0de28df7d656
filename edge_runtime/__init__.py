"""digitkit's edge runtime: reads handwritten digits with a TFLite model and OpenCV, never TensorFlow.

`from edge_runtime import DigitReader` works; the heavy modules load only when first used.
"""

_READER_NAMES = ("DigitReader", "ReaderOptions", "ReadResult", "Digit")


def __getattr__(name: str):
    if name in _READER_NAMES:
        from edge_runtime import reader

        return getattr(reader, name)
    raise AttributeError(f"module 'edge_runtime' has no attribute {name!r}")
