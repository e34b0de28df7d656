"""Guards for untrusted input files, applied before a parser sees them: file type, size caps, zip bombs."""

from __future__ import annotations

import os
import stat
import zipfile

# A member larger than this may not expand more than MAX_ZIP_RATIO times: Keras stores its members
# uncompressed (ratio 1), NumPy's savez_compressed reaches about 5 on MNIST, DEFLATE at most 1032.
ZIP_RATIO_FLOOR_BYTES = 1 << 20
MAX_ZIP_RATIO = 100
# Archives we read hold a handful of members; a central directory of thousands is a bomb of its own.
MAX_ZIP_MEMBERS = 1000

# First bytes of files that are commonly given by mistake, to say what was given.
_SIGNATURES = (
    (b"PK\x03\x04", "a zip archive"),
    (b"PK\x05\x06", "an empty zip archive"),
    (b"\x1f\x8b", "gzip-compressed data"),
    (b"\x93NUMPY", "a single NumPy array (.npy), not an .npz archive"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file (a legacy .h5 Keras model?)"),
    (b"\x80", "a Python pickle"),
    (b"\x00\x00\x08\x03", "an MNIST IDX image file"),
    (b"\x00\x00\x08\x01", "an MNIST IDX label file"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
)


class InputFileError(ValueError):
    """An input file that is not what it must be; the message starts with the file name."""


def file_kind(mode: int) -> str:
    """Says in words what kind of file system object `mode` (from `os.stat`) is."""
    for test, kind in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISREG, "a regular file")):
        if test(mode):
            return kind
    return "not a regular file"


def check_regular_file(path: str | os.PathLike, max_bytes: int, what: str) -> int:
    """Refuses anything but a regular file of at most `max_bytes`, without opening it.

    Opening a named pipe blocks until a writer appears and reading a device such as /dev/zero never
    ends, so the type is checked on the `stat` result (which follows symbolic links) first.

    Args:
        path: The file to check.
        max_bytes: The largest size accepted.
        what: What the file should be, for the message ("a Keras model").

    Returns:
        The file's size in bytes.

    Raises:
        FileNotFoundError: Nothing is there, or a symbolic link points nowhere.
        InputFileError: Not a regular file, unreadable, or too large.
    """
    try:
        status = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise FileNotFoundError(f"{path}: broken symbolic link (points to {os.readlink(path)!r})") from None
        raise FileNotFoundError(f"{path}: no such file") from None
    except OSError as error:
        raise InputFileError(f"{path}: cannot be read ({error.strerror or error})") from None
    if not stat.S_ISREG(status.st_mode):
        link = f" (a link to {os.path.realpath(path)})" if os.path.islink(path) else ""
        raise InputFileError(f"{path}{link} is {file_kind(status.st_mode)}, not a regular file; expected {what}")
    if status.st_size > max_bytes:
        raise InputFileError(f"{path}: {status.st_size:,} bytes, more than the {max_bytes:,} bytes accepted "
                             f"for {what}")
    return status.st_size


def read_head(path: str | os.PathLike, count: int = 16) -> bytes:
    """The first `count` bytes of a file already checked to be regular."""
    try:
        with open(path, "rb") as file:
            return file.read(count)
    except OSError as error:
        raise InputFileError(f"{path}: cannot be read ({error.strerror or error})") from None


def describe_start(head: bytes, noun: str) -> str:
    """Says that a file starting with `head` is not `noun`, and what it looks like instead.

    Example: "not a zip archive (starts with b'hello'): a text file".
    """
    if not head:
        return f"not {noun}: the file is empty (0 bytes)"
    text = f"not {noun} (starts with {head[:12]!r})"
    for signature, kind in _SIGNATURES:
        if head.startswith(signature):
            return f"{text}: {kind}"
    if _looks_like_text(head):
        return f"{text}: a text file"
    return text


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start < len(head) - 3:  # A multi-byte character cut at the end is still text.
            return False
        text = head[:error.start].decode("utf-8")
    return all(character.isprintable() or character in "\r\n\t\f" for character in text)


def check_zip_archive(path: str | os.PathLike, max_total_bytes: int, what: str) -> list[zipfile.ZipInfo]:
    """Reads a zip's central directory and refuses an archive that would expand past the caps.

    Nothing is decompressed here. Python's zipfile never returns more than a member's declared size
    (it stops there and fails the CRC), so capping the declared sizes caps what any zipfile reader,
    Keras and NumPy included, can expand the archive to.

    Args:
        path: A regular file (see `check_regular_file`).
        max_total_bytes: The largest declared uncompressed total accepted.
        what: What the archive should be, for the messages ("a Keras model").

    Returns:
        The members.

    Raises:
        InputFileError: Not a zip archive, a damaged one, or a decompression bomb.
    """
    head = read_head(path, 16)
    if not head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        raise InputFileError(f"{path}: {describe_start(head, 'a zip archive')}; expected {what}")
    try:
        declared = _declared_member_count(path)
        if declared is not None and declared > MAX_ZIP_MEMBERS:  # Checked before zipfile parses them all.
            raise InputFileError(f"{path}: a zip archive of {declared:,} members, more than the "
                                 f"{MAX_ZIP_MEMBERS:,} accepted for {what}")
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError) as error:
        if isinstance(error, InputFileError):
            raise
        raise InputFileError(f"{path}: a damaged zip archive ({error}); expected {what}") from None
    if len(members) > MAX_ZIP_MEMBERS:
        raise InputFileError(f"{path}: a zip archive of {len(members):,} members, more than the "
                             f"{MAX_ZIP_MEMBERS:,} accepted for {what}")
    total = 0
    for member in members:
        if member.file_size > ZIP_RATIO_FLOOR_BYTES and member.file_size > MAX_ZIP_RATIO * max(member.compress_size, 1):
            raise InputFileError(
                f"{path}: member {member.filename!r} would expand from {member.compress_size:,} to "
                f"{member.file_size:,} bytes (more than {MAX_ZIP_RATIO}x): a decompression bomb, refused unread")
        total += member.file_size
    if total > max_total_bytes:
        raise InputFileError(f"{path}: its members would expand to {total:,} bytes, more than the "
                             f"{max_total_bytes:,} accepted for {what}; refused unread")
    return members


def _declared_member_count(path: str | os.PathLike) -> int | None:
    """The member count in the end-of-central-directory record, or None when it cannot be read."""
    end_record = getattr(zipfile, "_EndRecData", None)  # Private, but stable since Python 2; optional here.
    if end_record is None:
        return None
    with open(path, "rb") as file:
        record = end_record(file)
    return None if record is None else int(record[zipfile._ECD_ENTRIES_TOTAL])
