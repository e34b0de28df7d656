"""Decoding image files and bytes into uint8 gray or BGR arrays, with errors that say what is wrong."""

from __future__ import annotations

import contextlib
import os
import stat
import struct
import sys
import tempfile
import threading

# OpenCV's own ceiling on pixels per image (1 Gpx by default), lowered to ours for decoders whose header we do
# not parse fully (multi-page and tiled TIFF); read once, at the first decode. A user's own setting wins.
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", "50000000")

import cv2  # noqa: E402  (after the environment setting above)
import numpy as np  # noqa: E402

from edge_runtime import constants  # noqa: E402

__all__ = ["ImageError", "decode_image", "load_image", "load_image_noted", "sniff_format", "MAX_DECODE_BYTES",
           "MAX_FILE_BYTES"]

MAX_DECODE_BYTES = 320_000_000
"""Memory one decode may need: the file's bytes, plus twice the decoded pixels (width x height x channels x
bytes per sample, at the JPEG reduction used: OpenCV's decoders peak at about two copies, measured), plus the
8-bit copy of a 16-bit image. Keeps a worker's peak under 400 MB with the interpreter loaded (measured by
scripts/bench_image_memory.py): a 50 MP 8-bit RGB PNG fits (about 360 MB); a 50 MP 8-bit RGBA PNG, and the
issue's 400 KB 16-bit RGBA PNG of 50 MP (400 MB of pixels), are refused before decoding."""

_CAPTURE_FROM_BYTES = 16_384

MAX_FILE_BYTES = 200_000_000
"""Image files above this are refused before they are read."""

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_GRAY_TYPES = (0, 4)  # IHDR colour types "gray" and "gray + alpha"
_JPEG_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_STANDALONE_MARKERS = frozenset(range(0xD0, 0xDA)) | {0x01}
_REDUCTION_TOLERANCE = 0.95  # a reduced JPEG may be this much smaller than the working side
_EXIF_ORIENTATION_TAG = 0x0112
_TIFF_WIDTH_TAG = 256
_TIFF_HEIGHT_TAG = 257
_TIFF_BITS_TAG = 258
_TIFF_SAMPLES_TAG = 277
_REDUCED_FLAGS = {
    (8, True): cv2.IMREAD_REDUCED_GRAYSCALE_8,
    (4, True): cv2.IMREAD_REDUCED_GRAYSCALE_4,
    (2, True): cv2.IMREAD_REDUCED_GRAYSCALE_2,
    (1, True): cv2.IMREAD_GRAYSCALE,
    (8, False): cv2.IMREAD_REDUCED_COLOR_8,
    (4, False): cv2.IMREAD_REDUCED_COLOR_4,
    (2, False): cv2.IMREAD_REDUCED_COLOR_2,
    (1, False): cv2.IMREAD_COLOR,
}
# Signatures of files people drop into image folders by mistake, to say what they are.
_KNOWN_NON_IMAGES = (
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"8BPS", "a Photoshop document"),
    (b"\x00\x00\x01\x00", "a Windows icon"),
    (b"<svg", "an SVG drawing, which must be rendered to PNG first"),
    (b"<?xml", "an XML file"),
)


class ImageError(ValueError):
    """An image file or buffer that cannot be read; the message starts with the file name.

    Attributes:
        path: The file name (or the name given to `decode_image`).
        reason: What is wrong, without the file name.
    """

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = os.fsdecode(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):
        return (type(self), (self.path, self.reason))


class _Header:
    """What the header of a file says before decoding: pixel size, gray or colour, orientation, the decoded
    sample layout (channels, bytes per sample) and, for TIFF, the number of pages."""

    __slots__ = ("channels", "height", "is_gray", "orientation", "pages", "sample_bytes", "width")

    def __init__(self, width: int | None, height: int | None, is_gray: bool = False, orientation: int = 1,
                 channels: int = 4, sample_bytes: int = 1, pages: int = 1):
        self.width = width
        self.height = height
        self.is_gray = is_gray
        self.orientation = orientation
        self.channels = channels
        self.sample_bytes = sample_bytes
        self.pages = pages


def load_image(path: str | os.PathLike, *, work_side: int | None = constants.WORK_MAX_SIDE) -> np.ndarray:
    """Reads and decodes one image file.

    Args:
        path: The image file.
        work_side: Large JPEGs are decoded at 1/2, 1/4 or 1/8 scale while their longer side stays at
            least about this (95% of it); None decodes every pixel.

    Returns:
        A uint8 array, HxW for gray images and HxWx3 (BGR) for colour ones, upright per EXIF.

    Raises:
        FileNotFoundError: `path` does not exist.
        ImageError: `path` is a folder, a broken link, unreadable, not an image, corrupt or too big.
    """
    return load_image_noted(path, work_side=work_side)[0]


def load_image_noted(path: str | os.PathLike, *, work_side: int | None = constants.WORK_MAX_SIDE
                     ) -> tuple[np.ndarray, str]:
    """`load_image`, plus a note on what was not read ("" when the whole file was): the pages of a
    multi-page TIFF after the first."""
    data = _read_file(path)
    name = os.fsdecode(path)
    image, header = _decode(data, name, work_side)
    note = ""
    if header is not None and header.pages > 1:
        note = (f"multi-page TIFF: read page 1 of {header.pages}; split it (e.g. `tiffsplit`) to read "
                f"every page")
    return image, note


def _read_file(path: str | os.PathLike) -> bytes:
    try:
        status = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise ImageError(path, f"broken symbolic link (points to {os.readlink(path)!r})") from None
        raise
    except OSError as error:
        raise ImageError(path, f"cannot be read ({error.strerror or error})") from None
    if stat.S_ISDIR(status.st_mode):
        raise ImageError(path, "is a folder, not an image file")
    if not stat.S_ISREG(status.st_mode):
        # Opening a pipe or device could block forever or read without end.
        raise ImageError(path, "is not a regular file")
    if status.st_size > MAX_FILE_BYTES:
        raise ImageError(path, f"{status.st_size} bytes is above the limit of {MAX_FILE_BYTES} for an image "
                               f"file (MAX_FILE_BYTES)")
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:  # It grew while being read.
            raise ImageError(path, f"more than {MAX_FILE_BYTES} bytes (MAX_FILE_BYTES)")
        return data
    except PermissionError:
        raise ImageError(path, "permission denied") from None
    except OSError as error:
        raise ImageError(path, f"cannot be read ({error.strerror or error})") from None


def decode_image(
    data: bytes | bytearray | memoryview,
    name: str = "<bytes>",
    *,
    work_side: int | None = constants.WORK_MAX_SIDE,
) -> np.ndarray:
    """Decodes the bytes of a PNG, JPEG, BMP, TIFF or WebP file.

    The pixel count is checked against `constants.MAX_IMAGE_PIXELS` from the header, before decoding.
    16-bit samples are scaled to 8 bits, transparency is composited onto a plain background and
    EXIF orientation is applied.

    Args:
        data: The whole file.
        name: The file name, used in error messages.
        work_side: Large JPEGs are decoded at 1/2, 1/4 or 1/8 scale while their longer side stays at
            least about this (95% of it); None decodes every pixel.

    Returns:
        A uint8 array, HxW for gray images and HxWx3 (BGR) for colour ones.

    Raises:
        ImageError: The data is empty, not an image, of an unsupported kind, truncated, corrupt or
            has more pixels than allowed.
        TypeError: `data` is not bytes-like.
    """
    return _decode(data, name, work_side)[0]


def _decode(data, name: str, work_side: int | None) -> tuple[np.ndarray, _Header | None]:
    if not isinstance(data, (bytes, bytearray)):
        data = _as_bytes(data)
    if not data:
        raise ImageError(name, "file is empty (0 bytes)")
    kind = sniff_format(data)
    if kind is None:
        raise ImageError(name, _describe_non_image(data))
    try:
        header = _HEADER_READERS[kind](data, name)
    except (struct.error, IndexError, OverflowError):
        raise ImageError(name, "truncated or corrupt image data (bad header)") from None
    _check_pixel_count(header.width, header.height, name)
    if kind == "jpeg":
        factor = _reduction_factor(header, work_side)
        _check_decode_bytes(data, header, name, factor)
        return _decode_jpeg(data, header, name, factor), header
    _check_decode_bytes(data, header, name, 1)
    capture = kind != "png" or len(data) >= _CAPTURE_FROM_BYTES
    return _decode_any(data, header, name, work_side, capture), header


def _check_decode_bytes(data: bytes, header: _Header, name: str, factor: int) -> None:
    """Refuses, before decoding, an image whose decoding would need more than MAX_DECODE_BYTES."""
    if header.width is None or header.height is None:
        return
    pixels = -(-header.width // factor) * -(-header.height // factor)
    decoded = pixels * header.channels * header.sample_bytes
    converted = pixels * header.channels if header.sample_bytes > 1 else 0  # the 8-bit copy
    needed = len(data) + 2 * decoded + converted
    if needed > MAX_DECODE_BYTES:
        raise ImageError(name, f"decoding needs about {needed / 1e6:.0f} MB ({header.width}x{header.height}, "
                               f"{header.channels} channel(s) of {8 * header.sample_bytes} bits), above the limit "
                               f"of {MAX_DECODE_BYTES / 1e6:.0f} MB (MAX_DECODE_BYTES); save it smaller"
                               + (" or with 8-bit samples" if header.sample_bytes > 1 else "")
                               + (" or without transparency" if header.channels == 4 else ""))


def _as_bytes(data: object) -> bytes:
    if isinstance(data, (str, os.PathLike)):
        raise TypeError("decode_image takes the bytes of a file; use load_image for a path")
    try:
        return bytes(memoryview(data))
    except TypeError:
        raise TypeError(f"decode_image takes bytes, not {type(data).__name__}") from None


def sniff_format(data: bytes) -> str | None:
    """Names the image format from the first bytes: "png", "jpeg", "bmp", "tiff", "webp", "gif" or None."""
    if data.startswith(_PNG_SIGNATURE):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"BM"):
        return "bmp"
    if data.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "webp"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    return None


def _describe_non_image(data: bytes) -> str:
    head = data[:8]
    reason = f"not an image (starts with {head!r})"
    for signature, description in _KNOWN_NON_IMAGES:
        if data.startswith(signature):
            return f"{reason}: {description}"
    if data[4:8] == b"ftyp":
        return f"{reason}: a HEIC/AVIF photo or a video; export it as JPEG or PNG"
    if _looks_like_text(data):
        return f"{reason}: a text file"
    return reason


def _looks_like_text(data: bytes) -> bool:
    sample = data[:512]
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError as error:
        # A multi-byte character cut off at the end of the sample is still text.
        if error.start < len(sample) - 3:
            return False
        text = sample[: error.start].decode("utf-8")
    return all(character.isprintable() or character in "\r\n\t\f" for character in text)


def _check_pixel_count(width: int | None, height: int | None, name: str) -> None:
    if width is None or height is None:
        return
    if width <= 0 or height <= 0:
        raise ImageError(name, f"corrupt header (size {width}x{height})")
    pixels = width * height
    if pixels > constants.MAX_IMAGE_PIXELS:
        raise ImageError(
            name,
            f"{pixels} pixels ({width}x{height}) is above the limit of "
            f"{constants.MAX_IMAGE_PIXELS} (MAX_IMAGE_PIXELS)",
        )


# --- headers ---------------------------------------------------------------------------------


def _png_header(data: bytes, name: str) -> _Header:
    """Walks the chunks: a PNG without IEND, or with a chunk past the end, was cut off."""
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise ImageError(name, "truncated or corrupt image data (no PNG IHDR header)")
    width, height, bit_depth, colour_type = struct.unpack_from(">IIBB", data, 16)
    orientation = 1
    offset = 8
    end = len(data)
    while True:
        if offset + 12 > end:
            raise ImageError(name, "truncated or corrupt image data (PNG ends before its IEND chunk)")
        length, chunk_type = struct.unpack_from(">I4s", data, offset)
        chunk_end = offset + 12 + length
        if chunk_end > end:
            raise ImageError(name, "truncated or corrupt image data (PNG chunk runs past the end)")
        if chunk_type == b"IEND":
            break
        if chunk_type == b"eXIf":
            orientation = _tiff_orientation(data[offset + 8 : chunk_end - 4])
        offset = chunk_end
    channels = 1 if colour_type == 0 else 3 if colour_type == 2 else 4  # palette and gray+alpha may get alpha
    return _Header(width, height, colour_type in _PNG_GRAY_TYPES, orientation, channels, 2 if bit_depth == 16 else 1)


def _jpeg_header(data: bytes, name: str) -> _Header:
    """Walks the segments to the frame header; a JPEG with no EOI marker after its scan was cut off."""
    offset = 2
    end = len(data)
    frame = None
    while offset + 4 <= end:
        if data[offset] != 0xFF:
            raise ImageError(name, "truncated or corrupt image data (bad JPEG marker)")
        marker = data[offset + 1]
        if marker == 0xFF:  # fill byte before a marker
            offset += 1
            continue
        if marker in _JPEG_STANDALONE_MARKERS:
            offset += 2
            continue
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            if frame is None:
                raise ImageError(name, "truncated or corrupt image data (JPEG scan before its frame header)")
            # 0xFFD9 cannot occur inside entropy-coded data, where every 0xFF is followed by 0x00.
            if data.rfind(b"\xff\xd9") < offset:
                raise ImageError(name, "truncated or corrupt image data (JPEG ends before its EOI marker)")
            return frame
        (length,) = struct.unpack_from(">H", data, offset + 2)
        if marker in _JPEG_SOF_MARKERS and offset + 10 <= end:
            height, width, components = struct.unpack_from(">HHB", data, offset + 5)
            frame = _Header(width, height or None, components == 1, channels=1 if components == 1 else max(3, components))
        offset += 2 + length
    raise ImageError(name, "truncated or corrupt image data (JPEG ends before its image data)")


def _bmp_header(data: bytes, name: str) -> _Header:
    if len(data) < 26:
        raise ImageError(name, "truncated or corrupt image data (BMP header cut off)")
    pixel_offset, header_size = struct.unpack_from("<II", data, 10)
    if header_size == 12:  # OS/2 BITMAPCOREHEADER
        width, height, _planes, bits = struct.unpack_from("<HHHH", data, 18)
        compression = 0
    elif header_size >= 40 and len(data) >= 34:
        width, height, _planes, bits, compression = struct.unpack_from("<iiHHI", data, 18)
    else:
        raise ImageError(name, f"truncated or corrupt image data (BMP header size {header_size})")
    height = abs(height)  # negative height means rows stored top-down
    if compression in (0, 3) and width > 0:
        row_bytes = (width * bits + 31) // 32 * 4
        if len(data) < pixel_offset + row_bytes * height:
            raise ImageError(name, "truncated or corrupt image data (BMP pixel data cut off)")
    return _Header(width, height, channels=4 if bits == 32 else 3)


def _tiff_header(data: bytes, name: str) -> _Header:
    tags = _tiff_tags(data, (_TIFF_WIDTH_TAG, _TIFF_HEIGHT_TAG, _TIFF_BITS_TAG, _TIFF_SAMPLES_TAG))
    bits = tags.get(_TIFF_BITS_TAG, 8)
    samples = tags.get(_TIFF_SAMPLES_TAG, 1)
    if not 1 <= bits <= 64 or not 1 <= samples <= 16:
        raise ImageError(name, f"truncated or corrupt image data (TIFF with {samples} samples of {bits} bits)")
    return _Header(tags.get(_TIFF_WIDTH_TAG), tags.get(_TIFF_HEIGHT_TAG), channels=max(samples, 1),
                   sample_bytes=max(1, -(-bits // 8)), pages=_tiff_pages(data))


def _webp_header(data: bytes, name: str) -> _Header:
    (riff_size,) = struct.unpack_from("<I", data, 4) if len(data) >= 8 else (0,)
    if len(data) < 30 or len(data) < riff_size + 8:
        raise ImageError(name, "truncated or corrupt image data (WebP shorter than its RIFF size)")
    chunk = data[12:16]
    if chunk == b"VP8X":
        width = 1 + int.from_bytes(data[24:27], "little")
        height = 1 + int.from_bytes(data[27:30], "little")
        has_exif = bool(data[20] & 0x08)
        channels = 4 if data[20] & 0x10 else 3
        return _Header(width, height, False, _webp_orientation(data) if has_exif else 1, channels)
    if chunk == b"VP8L":
        (bits,) = struct.unpack_from("<I", data, 21)
        return _Header((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, channels=4 if bits >> 28 & 1 else 3)
    if chunk == b"VP8 ":
        width, height = struct.unpack_from("<HH", data, 26)
        return _Header(width & 0x3FFF, height & 0x3FFF, channels=3)
    raise ImageError(name, f"truncated or corrupt image data (unknown WebP chunk {chunk!r})")


def _gif_header(data: bytes, name: str) -> _Header:
    raise ImageError(name, "GIF images are not supported; convert it to PNG")


_HEADER_READERS = {
    "png": _png_header,
    "jpeg": _jpeg_header,
    "bmp": _bmp_header,
    "tiff": _tiff_header,
    "webp": _webp_header,
    "gif": _gif_header,
}


def _webp_orientation(data: bytes) -> int:
    offset = 12
    while offset + 8 <= len(data):
        chunk, length = struct.unpack_from("<4sI", data, offset)
        if chunk == b"EXIF":
            block = data[offset + 8 : offset + 8 + length]
            return _tiff_orientation(block[6:] if block.startswith(b"Exif\x00\x00") else block)
        offset += 8 + length + (length & 1)
    return 1


def _tiff_orientation(block: bytes) -> int:
    orientation = _tiff_tags(block, (_EXIF_ORIENTATION_TAG,)).get(_EXIF_ORIENTATION_TAG, 1)
    return orientation if 1 <= orientation <= 8 else 1


def _tiff_tags(block: bytes, wanted: tuple[int, ...]) -> dict[int, int]:
    """Reads integer tags from the first IFD of a TIFF structure (a TIFF file or an EXIF block); a tag with
    several values (BitsPerSample of RGB: 8, 8, 8) gives its first, read from where the entry points."""
    if len(block) < 8 or block[:2] not in (b"II", b"MM"):
        return {}
    order = "<" if block[:2] == b"II" else ">"
    (ifd_offset,) = struct.unpack_from(order + "I", block, 4)
    if ifd_offset + 2 > len(block):
        return {}
    (count,) = struct.unpack_from(order + "H", block, ifd_offset)
    found = {}
    for entry in range(min(count, (len(block) - ifd_offset - 2) // 12)):
        tag, field_type, values = struct.unpack_from(order + "HHI", block, ifd_offset + 2 + 12 * entry)
        if tag in wanted:
            value_format = "H" if field_type == 3 else "I"  # SHORT, else LONG
            where = ifd_offset + 10 + 12 * entry
            if values * struct.calcsize(value_format) > 4:  # The values are stored elsewhere.
                (where,) = struct.unpack_from(order + "I", block, where)
                if where + 4 > len(block):
                    continue
            (found[tag],) = struct.unpack_from(order + value_format, block, where)
    return found


def _tiff_pages(block: bytes, limit: int = 10_000) -> int:
    """How many images (IFDs) a TIFF file chains, following next-IFD offsets; a loop or a bad offset ends it."""
    if len(block) < 8 or block[:2] not in (b"II", b"MM"):
        return 1
    order = "<" if block[:2] == b"II" else ">"
    (offset,) = struct.unpack_from(order + "I", block, 4)
    pages, seen = 0, set()
    while 8 <= offset and offset + 2 <= len(block) and offset not in seen and pages < limit:
        seen.add(offset)
        pages += 1
        (count,) = struct.unpack_from(order + "H", block, offset)
        link = offset + 2 + 12 * count
        if link + 4 > len(block):
            break
        (offset,) = struct.unpack_from(order + "I", block, link)
    return max(pages, 1)


# --- decoding --------------------------------------------------------------------------------


class _NativeMessages:
    """Captures what the C decoders print on stderr (file descriptor 2) during one decode.

    libjpeg reports corrupt data ("Corrupt JPEG data: premature end of data segment") as a warning on
    stderr and still returns an image, grey where the data was bad; OpenCV prints its own notices there
    too. Caught, such a message becomes part of an error naming the file, instead of an anonymous line on
    the terminal and a confident reading of garbage. One temporary file per process (workers fork).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._file = None
        self._pid = -1

    def call(self, function, *arguments):
        """(function(*arguments), the text it printed on stderr); with DIGITKIT_NATIVE_LOGS set the text is
        also passed on to stderr, and where stderr cannot be redirected (closed) the function runs as is."""
        with self._lock:
            try:
                if self._pid != os.getpid():
                    self._file, self._pid = tempfile.TemporaryFile(), os.getpid()
                self._file.seek(0)
                self._file.truncate()
                with contextlib.suppress(OSError, ValueError, AttributeError):
                    sys.stderr.flush()
                saved = os.dup(2)
            except OSError:
                return function(*arguments), ""
            try:
                os.dup2(self._file.fileno(), 2)
                result = function(*arguments)
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            self._file.seek(0)
            text = self._file.read(4096).decode("utf-8", "replace")
        if text and os.environ.get("DIGITKIT_NATIVE_LOGS"):
            with contextlib.suppress(OSError, ValueError, AttributeError):
                sys.stderr.write(text)
        return result, text


_native = _NativeMessages()


def _decode_jpeg(data: bytes, header: _Header, name: str, factor: int) -> np.ndarray:
    """Decodes strictly: a libjpeg warning (corrupt or missing data) is an error, not a grey patch that
    reads as a confident digit. OpenCV applies EXIF orientation itself, also at reduced scale."""
    image, messages = _native.call(cv2.imdecode, np.frombuffer(data, np.uint8), _REDUCED_FLAGS[factor, header.is_gray])
    problem = _jpeg_problem(messages)
    if problem:
        raise ImageError(name, f"truncated or corrupt image data (libjpeg: {problem})")
    if image is None:
        raise ImageError(name, "truncated or corrupt image data")
    return image


def _decoder_message(messages: str) -> str:
    """The first line a decoder printed, without OpenCV's log prefix ("[ERROR:0@0.4] global grfmt_tiff.cpp:117")."""
    for line in messages.splitlines():
        line = line.strip()
        if line.startswith("[") and "] " in line:
            line = line.split("] ", 1)[1].split(" ", 2)[-1]
        if line:
            return line[:200]
    return ""


def _jpeg_problem(messages: str) -> str:
    """The first libjpeg warning in `messages` ("" for none); OpenCV's own notices ("[ WARN...") are not libjpeg's."""
    for line in messages.splitlines():
        line = line.strip()
        if line and not line.startswith("[") and not any(benign in line for benign in _BENIGN_JPEG_WARNINGS):
            return line
    return ""


_BENIGN_JPEG_WARNINGS = (
    "Invalid SOS parameters for sequential JPEG",  # Some phone encoders; the image decodes completely.
)
# Not benign: "N extraneous bytes before marker 0xd9". Some webcams pad their frames so, but it is also how
# libjpeg notices a scan whose Huffman decoding went out of step after a damaged block, which reads as a
# confident wrong number.


def _reduced(image: np.ndarray, header: _Header, work_side: int | None) -> np.ndarray:
    """Large PNG, TIFF, BMP and WebP images shrunk by 2, 4 or 8 as JPEGs are while decoding, so that the
    colour conversions and the reader work on a copy of a few MB instead of the full picture."""
    factor = _reduction_factor(_Header(image.shape[1], image.shape[0]), work_side)
    if factor == 1:
        return image
    size = (max(1, image.shape[1] // factor), max(1, image.shape[0] // factor))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _reduction_factor(header: _Header, work_side: int | None) -> int:
    """The largest of 8, 4, 2 leaving the longer side at least about `work_side` (a 4032-pixel photo: 4)."""
    if work_side is None or header.height is None:
        return 1
    longer_side = max(header.width, header.height)
    for factor in (8, 4, 2):
        if longer_side >= factor * _REDUCTION_TOLERANCE * work_side:
            return factor
    return 1


def _decode_any(data: bytes, header: _Header, name: str, work_side: int | None = None,
                capture: bool = True) -> np.ndarray:
    # These decoders fail outright on corrupt data rather than warn. Their messages (libtiff's, libpng's) are
    # kept off the terminal and put in the error, except for PNGs under _CAPTURE_FROM_BYTES: a 28x28 PNG
    # decodes in less time than the capture takes, so a small corrupt PNG may still print libpng's line.
    if capture:
        image, messages = _native.call(cv2.imdecode, np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    else:
        image, messages = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED), ""
    if image is None:
        detail = _decoder_message(messages)
        raise ImageError(name, "truncated or corrupt image data" + (f" ({detail})" if detail else ""))
    if header.width is None:
        _check_pixel_count(image.shape[1], image.shape[0], name)
    if image.dtype != np.uint8:
        image = _to_uint8(image, name)
    image = _reduced(image, header, work_side)  # Before colour work, so that it runs on the small copy.
    if image.ndim == 3:
        image = _to_gray_or_bgr(image, header.is_gray)
    if header.orientation != 1:
        image = _apply_orientation(image, header.orientation)
    return image


def _to_uint8(image: np.ndarray, name: str) -> np.ndarray:
    if image.dtype == np.uint16:
        # Rounds v * 255 / 65535; taking the high byte alone would darken every level slightly.
        return cv2.convertScaleAbs(image, alpha=255.0 / 65535.0)
    if image.dtype in (np.float32, np.float64):
        image = np.nan_to_num(image)
        peak = float(image.max(initial=0.0))
        scale = 255.0 if peak <= 1.0 else 255.0 / peak
        return cv2.convertScaleAbs(np.clip(image, 0.0, None), alpha=scale)
    raise ImageError(name, f"unsupported sample type {image.dtype} (expected 8 or 16-bit unsigned)")


def _to_gray_or_bgr(image: np.ndarray, is_gray: bool) -> np.ndarray:
    channels = image.shape[2]
    if channels == 1:
        return image[:, :, 0]
    if channels == 4:
        image = _flatten_alpha(image)
    if is_gray:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return image


def _flatten_alpha(bgra: np.ndarray) -> np.ndarray:
    """Composites onto white, or onto black when the visible content is light and sparse.

    Dark ink on a transparent background then reads as dark on white, and white ink drawn on a
    transparent layer stays visible (as white on black) instead of vanishing into white.
    """
    alpha = bgra[:, :, 3]
    bgr = cv2.cvtColor(bgra, cv2.COLOR_BGRA2BGR)
    if alpha.min() == 255:
        return bgr
    background = 0 if _content_is_light_and_sparse(bgr, alpha) else 255
    weight = alpha.astype(np.uint16)[:, :, np.newaxis]
    blended = bgr * weight + background * (255 - weight) + 127
    return (blended // 255).astype(np.uint8)


def _content_is_light_and_sparse(bgr: np.ndarray, alpha: np.ndarray) -> bool:
    coverage = float(alpha.mean()) / 255.0
    if coverage >= 0.5 or coverage == 0.0:
        return False
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    brightness = float(np.dot(gray.ravel().astype(np.float32), alpha.ravel().astype(np.float32)))
    return brightness / (coverage * 255.0 * alpha.size) > 128.0


def _apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """Turns an image stored with EXIF orientation 2..8 upright."""
    if orientation == 2:
        return cv2.flip(image, 1)
    if orientation == 3:
        return cv2.rotate(image, cv2.ROTATE_180)
    if orientation == 4:
        return cv2.flip(image, 0)
    if orientation == 5:
        return cv2.transpose(image)
    if orientation == 6:
        return cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 7:
        return cv2.flip(cv2.transpose(image), -1)
    if orientation == 8:
        return cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return image
