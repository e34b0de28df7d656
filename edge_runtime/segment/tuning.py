"""The numbers segmentation decides with: one frozen `Tuning`, its fields grouped by stage.

Pixel sizes are in working-resolution pixels (see `PreprocessOptions.work_side`) unless a field
says otherwise; ink levels are on the 0..255 ink-contrast scale (0 = paper, 255 = full ink);
"fractions" and "shares" are of the quantity their comment names.
"""

from __future__ import annotations

import dataclasses
import math

__all__ = ["Tuning"]


@dataclasses.dataclass(frozen=True)
class Tuning:
    """Every threshold and size that segmentation uses; the defaults are the tuned values.

    Raises:
        ValueError: A field has the wrong type or a value outside its range (the message names it).
    """

    # --- Tiles (small gray images holding one digit, MNIST itself) ---
    tile_max_side: int = 64  # gray images no larger than this (and roughly square) take the fast tile path
    tile_max_aspect: float = 1.5  # longer / shorter side of a tile: longer strips may hold several digits
    tile_ink_level: float = 0.3  # of the tile's contrast: brighter pixels are ink when finding the digit's box
    tile_min_contrast: int = 48  # gray levels between background and ink; less is a blank tile
    tile_clean_border: int = 16  # a darker border mean is MNIST's black plus a few ink pixels, kept as is
    tile_full_ink: int = 192  # tiles whose brightest ink is dimmer than this are stretched to full ink
    mnist_shift_tolerance: float = 1.0  # pixels the centre of mass may be off before a tile is re-centred

    # --- Scale: small cut-out cells and strips ---
    upscale_below: int = 64  # input pixels: images whose shorter side is less are segmented enlarged to it (0: never)
    max_upscale: int = 4  # the largest enlargement factor

    # --- Light: polarity and background ---
    small_side: int = 64  # the background is estimated on a copy whose longer side is 64..127 pixels
    background_kernel_fraction: float = 0.2  # of the copy's shorter side: narrower strokes leave the background
    light_surface: int = 100  # median gray level: photographed paper is brighter, chalkboards much darker
    paper_percentile: float = 0.9  # of the background: the brightness of well-lit paper
    shadow_depth: float = 0.35  # paper in shadow is at least this bright relative to lit paper
    tail_share: float = 0.01  # the darkest and brightest pixels, this share each, show which way the ink goes
    dark_tail_ratio: float = 1.5  # a dim image whose dark tail is this much longer than its bright one is paper
    chalk_blur: float = 1.0  # sigma in working pixels, to make grainy chalk strokes solid
    chalk_full_contrast: int = 128  # gray levels above the board that count as full-contrast chalk

    # --- Mask: threshold ---
    noise_spread: float = 4  # the threshold is this many (median - lower quartile) steps above the median
    noise_margin: float = 8  # ... plus this many ink levels
    table_width_fraction: float = 0.05  # of the shorter side: darker-than-paper regions this wide reaching the
    # frame are the table beside the sheet, not ink
    table_min_width: int = 8  # half-resolution pixels, at least (a box line in an enlarged cell is no table)
    table_margin: int = 2  # half-resolution pixels the table is grown by, to take in the sheet's edge
    max_paper_ink: int = 64  # a paper whose median pixel has more ink contrast than this is a texture
    strong_ink_percentile: float = 0.995  # the darkest half percent of the paper is the core of the strokes
    strong_ink_share: float = 0.45  # of the strong ink level: the threshold, to keep soft stroke edges out
    threshold_cap: int = 64  # ink levels: a higher threshold would lose faint ink beside strong ink

    faint_retry_contrast: float = 0.09  # a page where no digit passed, or where a digit was too faint, is
    # segmented again with this `min_contrast` (when lower): grey pencil, a washed-out photo
    faint_retry_height: float = 0.6  # of the kept pieces' median height: a too-faint piece this tall ...
    faint_retry_ink: float = 0.5  # ... with this share of their median mean ink is a digit missed

    # --- Mask: stroke width and ruled lines (measured at half the working resolution) ---
    max_stroke_fraction: float = 0.035  # of the shorter side: thicker regions do not count as strokes
    rule_min_fraction: tuple[float, float] = (0.3, 0.6)  # of the width, height: shorter straight runs are never rules
    rule_stroke_factor: tuple[float, float] = (15, 30)  # rules are also this many stroke widths long: across, down
    rule_min_cross: float = 0.75  # of the height: shorter horizontal runs are digit bars in a crop, never rules
    rule_bridge_along: int = 3  # pixels: gaps this long between the dashes of a faint rule are bridged
    rule_bridge_across: int = 3  # pixels: thickening a rule this much lets it tilt by about 2 degrees
    rule_ink_percentile: float = 0.9  # of the erased rule pixels' ink: the level the rules themselves reach
    rule_ink_margin: int = 16  # ink levels above it (at least) ...
    rule_ink_share: float = 0.3  # ... or this share of the way from it to full ink: a pen stroke on a rule

    # --- Tilt: pages photographed askew ---
    tilt_min_length: float = 0.4  # of the width: a straight piece this long is a rule that was not removed
    tilt_straightness: float = 0.8  # of its pixels within two stroke widths of its fitted line
    tilt_range: tuple[float, float] = (4.0, 25.0)  # degrees: leaning less, rules are removed; more, it is no rule
    tilt_min_rules: int = 2  # such lines leaning alike: a page's rules (a sheet's edge on a table is one line)
    tilt_agreement: float = 1.0  # degrees from their median

    # --- Components: candidates and merging pieces ---
    min_area: int = 6  # ink pixels: smaller components are specks
    max_candidates: int = 96  # components kept (largest first) before merging, to bound the time
    min_digit_height: int = 7  # shorter candidates are dots and dashes; smaller images hold no digit
    line_aspect: float = 4  # width / height: a piece this flat ...
    line_overhang: float = 2.5  # ... and this many times wider than the piece it would join is a line, not a bar
    faint_join_level: float = 0.5  # of the threshold: ink this strong joins side-by-side pieces into one digit
    faint_join_min_ratio: float = 0.6  # such pieces are about as tall as each other and share most of their rows
    faint_join_max_gap: float = 0.3  # of the taller one's height: the widest gap between them
    faint_join_max_aspect: float = 1.0  # width / height of the joined piece: wider is two digits

    # --- Filters: specks, lines, blobs, page edges, plausibility ---
    min_line_height_fraction: float = 0.4  # of the line's typical digit; shorter ones are dots and specks
    max_line_height_ratio: float = 2.0  # thin strokes taller than this times the line's typical digit are lines
    max_aspect: float = 3.0  # width / height: wider candidates are lines or dashes (touching digits stay <= 3)
    blob_fill: float = 0.75  # of the bounding box: fuller candidates thicker than strokes are blobs, not digits
    blob_max_elongation: float = 2.5  # a solid patch longer than this times its width may be a 1
    # Stroke length over box width: less is a line. Squat 5s and 6s measured 1.44-1.64, and were dropped
    # as lines; above 1.4 the model's "not a digit" class decides (1.7 before the fifth session: forms
    # 278 -> 284 of 300, dashes 93 -> 96 of 100, real photos unchanged).
    min_stroke_per_width: float = 1.4
    box_side_elongation: float = 3.0  # height / width: thinner strokes from one erased rule to another are box sides
    box_band: float = 0.15  # of a piece's shorter side: the band along each side of its box ...
    box_side_cover: float = 0.85  # ... that ink covers this much of on all four sides: a drawn box
    box_line_share: float = 0.85  # of a drawn box's width (height): straight runs this long are its lines
    min_stroke_ratio: float = 0.45  # of the page's stroke width: finer strokes are printed lines
    edge_elongation: float = 4  # height / width: strokes this thin are checked for being a page edge
    edge_side_contrast: float = 0.25  # of the brighter side: a larger difference across a stroke is a page edge
    edge_height_ratio: float = 2.5  # times the lower median height: taller candidates are checked for a page edge
    edge_max_fill: float = 0.1  # of the box: candidates with less ink are checked for being a page edge too
    edge_reach: float = 3  # stroke widths beside such a candidate where its two sides are compared
    line_piece_elongation: float = 3  # height / width: thinner strokes are checked for being part of a long line
    line_tilts: tuple[float, ...] = (0.0, -0.02, 0.02, -0.04, 0.04)  # dx / dy added to a thin piece's tilt to follow it
    line_side: int = 4  # working pixels off a line's axis where there is paper, not ink
    line_continues: float = 0.25  # of the paper along such a stroke's axis: inked this much, the stroke is a line
    min_ink_over_noise: float = 1.3  # a digit's mean ink must exceed the noise floor by this factor
    min_ink_over_threshold: float = 1.1  # ... and the threshold by this one
    tight_crop_max_fill: float = 0.6  # strokes fill less of their box than shadows and objects do
    tight_crop_max_contact: float = 0.2  # of its longer side: a digit touches the frame with stroke ends only

    # --- Split: touching digits ---
    split_aspect: float = 1.25  # width / height: wider components may be digits written touching
    split_line_width: float = 1.6  # ... and so may components this much wider than the line's typical digit
    narrow_digit: float = 0.45  # width / height: narrower candidates (1s) do not set a line's digit width
    many_digits_width: float = 1.8  # times the line's digit width: surely several digits, cut through more ink
    many_digits_aspect: float = 1.6  # width / height: ... as is a component this much wider than tall
    many_max_crossing: float = 2.5  # stroke widths of ink in the column where such a component is cut
    split_min_part: float = 0.25  # of the height: the narrowest part a cut may leave
    split_min_height: float = 0.6  # of the height: the shortest part a cut may leave
    split_max_crossing: float = 1.5  # stroke widths of ink in the column where touching digits are cut
    cut_slants: tuple[float, ...] = (0.0, 0.2, -0.2, 0.4)  # dx / dy of the cuts tried; handwriting leans right
    touch_aspect: float = 0.85  # width / height: squarer components are cut only where two digits barely touch
    touch_max_crossing: float = 1.0  # stroke widths of ink in such a cut
    touch_min_height: float = 0.75  # of the height: the shortest part such a cut may leave

    # --- Order: a second look at lines of small digits ---
    zoom_below_height: int = 20  # lines of shorter digits are segmented again at full resolution
    zoom_pad: tuple[float, float] = (1.0, 0.6)  # of the digit height, around the line's digits: x, y
    zoom_min_piece: int = 3  # working pixels: on a reduced copy, pieces too short for digits but this tall ...
    zoom_reach: float = 2.0  # ... within this many digit heights of a line of small digits join its second look;
    zoom_min_pieces: int = 3  # ... where no digit was found, lines of this many such pieces get one,
    zoom_max_lines: int = 4  # ... the inkiest this many lines

    # --- Crop: cutting out each digit ---
    crop_from_source_height: int = 24  # digits shorter than this at working resolution are cut from the input
    crop_floor: float = 0.35  # of the threshold: fainter ink around a digit becomes black
    stroke_thin: float = 1.3  # strokes thinner than this in the 20-pixel box (MNIST: about 2.1) are thickened
    max_thicken_gain: float = 3.0  # brightening a thin faint stroke more than this would amplify noise

    @property
    def rule_gap(self) -> int:
        """Working pixels: an erased rule leaves gaps this much wider than itself."""
        return 2 * self.rule_bridge_across

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            _check(field.name, getattr(self, field.name), field.type, *_RANGES.get(field.name, _POSITIVE))


_POSITIVE = (0.0, math.inf, False)  # low, high, low allowed
_FRACTION = (0.0, 1.0, False)
_RANGES = {
    "tile_ink_level": _FRACTION,
    "tile_min_contrast": (1, 255, True),
    "tile_clean_border": (0, 255, True),
    "tile_full_ink": (1, 255, True),
    "mnist_shift_tolerance": (0.0, math.inf, True),
    "tile_max_aspect": (1.0, math.inf, True),
    "light_surface": (1, 255, True),
    "paper_percentile": _FRACTION,
    "shadow_depth": _FRACTION,
    "tail_share": (0.0, 0.5, False),
    "chalk_full_contrast": (1, 255, True),
    "noise_margin": (0.0, 255.0, True),
    "max_paper_ink": (0, 255, True),
    "strong_ink_percentile": _FRACTION,
    "faint_retry_contrast": _FRACTION,
    "faint_retry_height": _FRACTION,
    "faint_retry_ink": _FRACTION,
    "box_band": (0.0, 0.5, False),
    "box_side_cover": _FRACTION,
    "box_line_share": _FRACTION,
    "tilt_min_length": _FRACTION,
    "tilt_straightness": _FRACTION,
    "tilt_range": (0.0, 90.0, False),
    "strong_ink_share": _FRACTION,
    "threshold_cap": (1, 255, True),
    "max_stroke_fraction": _FRACTION,
    "table_width_fraction": _FRACTION,
    "table_margin": (0, math.inf, True),
    "table_min_width": (1, math.inf, True),
    "rule_min_fraction": _FRACTION,
    "rule_min_cross": (0.0, math.inf, True),
    "rule_ink_percentile": _FRACTION,
    "rule_ink_margin": (0, 255, True),
    "rule_ink_share": _FRACTION,
    "min_area": (1, math.inf, True),
    "max_candidates": (1, math.inf, True),
    "upscale_below": (0, 4096, True),
    "max_upscale": (1, 16, True),
    "min_digit_height": (1, math.inf, True),
    "faint_join_level": _FRACTION,
    "faint_join_min_ratio": _FRACTION,
    "faint_join_max_gap": (0.0, math.inf, True),
    "min_line_height_fraction": _FRACTION,
    "blob_fill": _FRACTION,
    "edge_side_contrast": _FRACTION,
    "edge_max_fill": _FRACTION,
    "line_tilts": (-1.0, 1.0, True),
    "line_continues": _FRACTION,
    "tight_crop_max_fill": _FRACTION,
    "tight_crop_max_contact": _FRACTION,
    "narrow_digit": (0.0, math.inf, True),
    "split_min_part": (0.0, 0.5, False),
    "split_min_height": _FRACTION,
    "cut_slants": (-1.0, 1.0, True),
    "touch_min_height": _FRACTION,
    "zoom_below_height": (0, math.inf, True),
    "zoom_pad": (0.0, math.inf, True),
    "crop_from_source_height": (0, math.inf, True),
    "crop_floor": (0.0, 1.0, True),
    "max_thicken_gain": (1.0, math.inf, True),
}
"""(low, high, whether low itself is allowed) per field; every other field must be a positive number."""


def _check(name: str, value: object, kind: str, low: float, high: float, low_allowed: bool) -> None:
    if kind.startswith("tuple"):
        length = None if "..." in kind else kind.count(",") + 1
        if not isinstance(value, tuple) or not value or (length is not None and len(value) != length):
            count = "one or more" if length is None else str(length)
            raise ValueError(f"Tuning.{name} must be a tuple of {count} numbers, not {value!r}")
        for item in value:
            _check(name, item, "float", low, high, low_allowed)
        return
    whole = kind == "int"
    if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)) or not math.isfinite(value):
        raise ValueError(f"Tuning.{name} must be a {'whole number' if whole else 'number'}, not {value!r}")
    if not (low <= value if low_allowed else low < value) or value > high:
        bound = f"at least {low}" if low_allowed else f"above {low}"
        upper = "" if high == math.inf else f" and at most {high}"
        raise ValueError(f"Tuning.{name} must be {bound}{upper}, not {value!r}")
