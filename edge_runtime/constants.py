"""Constants every digitkit stage agrees on: MNIST geometry, labels, file types and limits (stdlib only)."""

IMAGE_SIZE = 28
"""Side of the square image the model sees, in pixels."""

DIGIT_BOX = 20
"""Side of the box a digit is fitted into inside the 28x28 image, as MNIST did."""

NUM_CLASSES = 10
LABELS = tuple(str(digit) for digit in range(NUM_CLASSES))

CLI_MIN_CONFIDENCE = 0.9
"""`digit-infer --min-confidence` default, chosen on the tuning part of the real photos' risk-coverage
table (README: the highest threshold that still accepts 90% of real singles); the Python API's
`ReaderOptions.min_confidence` stays 0."""

NOT_A_DIGIT = "not a digit"
"""Label of the optional eleventh class: a piece segmentation found that is no digit (dropped by the reader)."""

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
"""File types `digit-infer` reads from folders (compared lower-case)."""

MAX_IMAGE_PIXELS = 50_000_000
"""Images with more pixels than this are refused before decoding (a 50 MP photo)."""

WORK_MAX_SIDE = 2048
"""Large files are decoded at 1/2, 1/4 or 1/8 of their size while their longer side stays at least about
this: a 4032-pixel phone photo at 2016 pixels. At a quarter (1008), handwriting under 50 px high had too
few pixels left for segmentation's second look at small digits (`scripts/large_photos.py`)."""

METADATA_NAME = "digitkit"
"""Name of the TFLite metadata entry that holds digitkit's JSON description of a model."""

POLARITY_WHITE_ON_BLACK = "white-on-black"
POLARITY_BLACK_ON_WHITE = "black-on-white"
POLARITIES = (POLARITY_WHITE_ON_BLACK, POLARITY_BLACK_ON_WHITE)

STATUS_OK = "ok"
STATUS_REJECTED = "rejected"
STATUS_NO_DIGIT = "no digit found"
STATUS_ERROR = "error"
STATUSES = (STATUS_OK, STATUS_REJECTED, STATUS_NO_DIGIT, STATUS_ERROR)

INK_AUTO = "auto"
INK_DARK_ON_LIGHT = "dark-on-light"
INK_LIGHT_ON_DARK = "light-on-dark"
INK_POLARITIES = (INK_AUTO, INK_DARK_ON_LIGHT, INK_LIGHT_ON_DARK)
"""How ink looks in a photo (`PreprocessOptions.polarity`): dark pen on paper, or chalk on a board."""
