"""The live Matplotlib window of `digit-infer --camera`: frame, boxes, number and FPS, redrawn by blitting.

Matplotlib is imported only when a view is made, so reading files and headless runs never load it.
"""

from __future__ import annotations

import functools
import time

import typing

import cv2
import numpy as np

if typing.TYPE_CHECKING:
    from edge_runtime import camera


def is_interactive_backend() -> bool:
    """Whether Matplotlib's backend can open a window (Agg, used by tests and servers, cannot)."""
    import matplotlib

    backend = matplotlib.get_backend().lower()
    try:
        from matplotlib.backends import BackendFilter, backend_registry

        non_interactive = backend_registry.list_builtin(BackendFilter.NON_INTERACTIVE)
    except ImportError:  # Matplotlib before 3.9.
        from matplotlib import rcsetup

        non_interactive = [name.lower() for name in rcsetup.non_interactive_bk]
    return backend not in non_interactive and "inline" not in backend


class LiveView:
    """A Matplotlib window: the overlay, the number read and the FPS, redrawn by blitting.

    Only the image and three text artists change per frame. They are "animated" (left out of full draws);
    each frame restores a saved background, draws those four artists and blits, instead of redrawing the
    whole figure. Keys: q quits, s asks for a snapshot, space pauses. Under a non-interactive backend
    (Agg) it opens no window and the same code runs, so tests can drive it and count `frames_shown`.
    """

    KEYS = {"q": "quit", "s": "snapshot", " ": "pause"}
    _BANNER_PIXELS = 56  # Strip above the image for the number and the FPS.

    def __init__(self, title: str = "digitkit", blit: bool = True):
        """Prepares the view; the window itself opens with the first frame, when its size is known.

        Args:
            title: Window title.
            blit: Blit only the changed artists; False redraws the whole figure (for comparison).
        """
        from edge_runtime import optional

        # Loaded only for a window: `digit-infer one.png` stays fast, and the edge install has no Matplotlib.
        self._pyplot = optional.pyplot("the live camera window (or use --headless)")
        self.title = title
        self.blit = blit
        self.interactive = is_interactive_backend()
        self.frames_shown = 0
        self.quit_requested = False
        self.quit_reason = ""
        self.paused = False
        self.snapshot_requested = False
        self.figure = None
        self.image_artist = None
        self._background = None
        self._rgba: np.ndarray | None = None
        self._saved_keymaps: dict = {}
        self._closed = False

    def update(self, image: np.ndarray, reading: "camera.Reading | None", fps: float) -> None:
        """Shows a BGR overlay and the reading; the window is made, sized to the frame, on the first call."""
        if self._closed:
            return
        if self.figure is None:
            self._create(image.shape)
        self._rgba = _bgr_to_rgba(image, self._rgba)
        self.image_artist.set_data(self._rgba)
        self._set_texts(reading, fps)
        self._render()
        self.frames_shown += 1

    def poll(self) -> None:
        """Lets the GUI handle pending events (keys, resizes, closing)."""
        if self._window_open():
            self.figure.canvas.flush_events()

    def wait(self, seconds: float) -> None:
        """Waits while still handling events: for pausing and for playing a file at its own speed."""
        if seconds <= 0:
            return
        if self._window_open():
            self.figure.canvas.start_event_loop(seconds)
        else:
            time.sleep(seconds)

    def hold(self, message: str) -> None:
        """Keeps the window, with its last frame and `message`, until it is closed or q is pressed: the end
        of a video file should not take the last reading away with it."""
        if not self._window_open() or self.quit_requested:
            return
        self.status_text.set_text(message)
        self._render()
        while self._window_open() and not self.quit_requested:
            self.wait(0.1)

    def take_snapshot_request(self) -> bool:
        requested, self.snapshot_requested = self.snapshot_requested, False
        return requested

    def press(self, key: str) -> None:
        """Acts on a key, as the key handler does (tests call it directly)."""
        action = self.KEYS.get(key)
        if action == "quit":
            self.quit_requested, self.quit_reason = True, "q pressed"
        elif action == "snapshot":
            self.snapshot_requested = True
        elif action == "pause":
            self.paused = not self.paused
            if self.figure is not None and self.frames_shown:
                self.status_text.set_text(self._status_line(self._last_fps))
                self._render()

    def close(self) -> None:
        """Closes the window (unless its user already did) and gives Matplotlib its keys back."""
        if self.figure is not None and not self._closed:
            self._pyplot.close(self.figure)
        self.figure = None
        self._restore_keymaps()

    @property
    def texts(self) -> dict[str, str]:
        """What the text artists show now: number, detail and status."""
        if self.figure is None:
            return {"number": "", "detail": "", "status": ""}
        return {"number": self.number_text.get_text(), "detail": self.detail_text.get_text(),
                "status": self.status_text.get_text()}

    def _create(self, shape) -> None:
        height, width = shape[:2]
        self._take_over_keymaps()
        dpi = 100
        total = height + self._BANNER_PIXELS
        # Sized so the frame shows at one screen pixel per frame pixel: no costly resampling per frame.
        # No pan/zoom toolbar: it would shift the frame off its pixels, and q, s and space do the rest.
        import matplotlib

        with matplotlib.rc_context({"toolbar": "None"}):
            self.figure = self._pyplot.figure(figsize=(width / dpi, total / dpi), dpi=dpi)
        if self.figure.canvas.manager is not None:
            self.figure.canvas.manager.set_window_title(self.title)
        axes = self.figure.add_axes((0, 0, 1, height / total))
        axes.set_axis_off()
        animated = self.blit
        self.image_artist = _frame_image_class()(axes, interpolation="nearest", animated=animated,
                                                 extent=(-0.5, width - 0.5, height - 0.5, -0.5))
        self.image_artist.set_data(np.zeros((height, width, 4), np.uint8))
        axes.add_image(self.image_artist)
        axes.set(xlim=(-0.5, width - 0.5), ylim=(height - 0.5, -0.5), aspect="equal")
        top = 1 - 0.5 * self._BANNER_PIXELS / total
        self.number_text = self.figure.text(0.015, top, "", fontsize=22, fontweight="bold", va="center",
                                            animated=animated)
        self.detail_text = self.figure.text(0.30, top, "", fontsize=11, va="center", animated=animated)
        self.status_text = self.figure.text(0.985, top + 0.25 * self._BANNER_PIXELS / total, "", fontsize=11,
                                            va="center", ha="right", animated=animated)
        self.figure.text(0.985, top - 0.25 * self._BANNER_PIXELS / total, "q quit · s snapshot · space pause",
                         fontsize=9, va="center", ha="right", color="0.4")  # Static: part of the background.
        self._last_fps = 0.0
        canvas = self.figure.canvas
        canvas.mpl_connect("key_press_event", lambda event: self.press(event.key))
        canvas.mpl_connect("close_event", self._on_close)
        canvas.mpl_connect("draw_event", self._on_draw)
        if self.interactive:
            self._pyplot.show(block=False)
        canvas.draw()  # Through draw_event, this saves the background the animated artists go on.
        canvas.flush_events()

    def _set_texts(self, reading: "camera.Reading | None", fps: float) -> None:
        self._last_fps = fps
        if reading is None:
            self.number_text.set_text("…")
            self.detail_text.set_text("reading")
        else:
            self.number_text.set_text(reading.digits or "–")
            self.detail_text.set_text(f"{reading.confidence:.0%}  {reading.status}" if reading.digits
                                      else reading.status)
        self.status_text.set_text(self._status_line(fps))

    def _status_line(self, fps: float) -> str:
        return ("paused  " if self.paused else "") + f"{fps:.1f} FPS"

    def _render(self) -> None:
        canvas = self.figure.canvas
        if not self.blit:
            canvas.draw()
        else:
            if self._background is None:
                canvas.draw()
            canvas.restore_region(self._background)
            self._draw_animated()
            canvas.blit(self.figure.bbox)
        if self._window_open():
            canvas.flush_events()

    def _draw_animated(self) -> None:
        for artist in (self.image_artist, self.number_text, self.detail_text, self.status_text):
            self.figure.draw_artist(artist)

    def _on_draw(self, event) -> None:
        """After any full draw (the first, or a resize), saves the new background and puts the artists back."""
        if not self.blit or self.figure is None:
            return
        canvas = self.figure.canvas
        self._background = canvas.copy_from_bbox(self.figure.bbox)
        self._draw_animated()

    def _on_close(self, event) -> None:
        self._closed = True  # The GUI has destroyed the window: no more drawing or event handling in it.
        self.quit_requested = True
        self.quit_reason = self.quit_reason or "window closed"

    def _window_open(self) -> bool:
        return self.interactive and self.figure is not None and not self._closed

    def _take_over_keymaps(self) -> None:
        """Frees q, s and space from Matplotlib's own bindings (q closes, s opens a save dialog) while shown."""
        import matplotlib

        for name in [name for name in matplotlib.rcParams if name.startswith("keymap.")]:
            current = list(matplotlib.rcParams[name])
            if any(key in self.KEYS for key in current):
                self._saved_keymaps[name] = current
                matplotlib.rcParams[name] = [key for key in current if key not in self.KEYS]

    def _restore_keymaps(self) -> None:
        import matplotlib

        for name, keys in self._saved_keymaps.items():
            matplotlib.rcParams[name] = keys
        self._saved_keymaps = {}


def _bgr_to_rgba(image: np.ndarray, buffer: np.ndarray | None) -> np.ndarray:
    """Opaque RGBA for Matplotlib, converted into the same buffer every frame."""
    shape = image.shape[:2] + (4,)
    if buffer is None or buffer.shape != shape:
        buffer = np.empty(shape, np.uint8)
    cv2.cvtColor(image, cv2.COLOR_BGR2RGBA, dst=buffer)
    return buffer


@functools.lru_cache(maxsize=1)
def _frame_image_class():
    """`FrameImage`, made on first use so that Matplotlib is imported only for a window."""
    from matplotlib.image import AxesImage
    from matplotlib.transforms import IdentityTransform

    class FrameImage(AxesImage):
        """An AxesImage for opaque uint8 video frames, scaled by OpenCV instead of Matplotlib.

        Matplotlib resamples every image in float32 with premultiplied alpha: about 10 ms for a 640x480
        frame, more than the whole reading. An opaque frame shown whole and axis-aligned needs none of
        that, so it is resized (usually not at all, as the window is sized to the frame) and handed to
        the renderer as is. Anything else (zoomed, panned, other data) takes Matplotlib's own path.
        """

        def make_image(self, renderer, magnification=1.0, unsampled=False):
            frame = np.ma.getdata(self._A)
            if unsampled or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 4:
                return super().make_image(renderer, magnification, unsampled)
            box, clip = self.get_window_extent(), self.axes.bbox
            left, right = sorted((box.x0, box.x1))
            bottom, top = sorted((box.y0, box.y1))
            if left < clip.x0 - 1 or bottom < clip.y0 - 1 or right > clip.x1 + 1 or top > clip.y1 + 1:
                return super().make_image(renderer, magnification, unsampled)
            width, height = round((right - left) * magnification), round((top - bottom) * magnification)
            if width < 1 or height < 1:
                return None, 0, 0, None
            if (height, width) != frame.shape[:2]:
                shrinking = width < frame.shape[1]
                frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA if shrinking
                                   else cv2.INTER_LINEAR)
            return cv2.flip(frame, 0), left, bottom, IdentityTransform()  # Agg draws row 0 at the bottom.

    return FrameImage
