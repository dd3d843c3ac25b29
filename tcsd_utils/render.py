"""How a figure leaves the process: the notebook's renderer, a widget's display data, files.

The figure functions (`tcsd_utils.plots`) only draw; this module shows and saves what they
return. `use_notebook_renderer` makes ``fig.show()`` emit only the plotly JSON MIME type,
which JupyterLab renders and which keeps notebooks small; `mime_bundle` is the same display
data built without a kernel (the sliders of `tcsd_utils.widgets`); `save_figure` writes a
figure as HTML (plotly.js written once per folder, so it opens offline) and as PNG through
``kaleido`` and a Chromium. All three are importable from `tcsd_utils.plots` too, where the
notebooks call them.

PNGs are optional and can never stop or hang a run: whether a browser exists is decided
before anything is started, every wait on kaleido is bounded (``$TCSD_PNG_TIMEOUT``, 60 s),
and a missing, dead or stuck browser turns PNGs off for the process with one warning.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import os
import re
import shutil
import sys
import threading
import warnings
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio

from .files import atomic_path

__all__ = ["MIME", "use_notebook_renderer", "mime_bundle", "show", "save_figure", "png_status", "png_available",
           "chromium", "PNG_ENV", "PNG_TIMEOUT_ENV"]

MIME = "application/vnd.plotly.v1+json"  # the plotly JSON MIME type JupyterLab renders


def use_notebook_renderer(renderer: str = "plotly_mimetype") -> None:
    """Make ``fig.show()`` in a notebook emit ``renderer`` (default: plotly JSON only).

    The default notebook renderer of plotly also embeds plotly.js (about 4 MB) in the
    notebook; the JSON MIME type is a few kB per figure and JupyterLab draws it with the
    ``jupyterlab-plotly`` extension that ships with plotly. Call it once, at the top of a
    notebook; it changes plotly's process-wide default, nothing else.
    """
    pio.renderers.default = renderer


def mime_bundle(fig: go.Figure) -> dict:
    """The display data of a figure: the plotly JSON MIME type plus a text/plain line.

    This is what ``fig.show()`` emits under `use_notebook_renderer`, built without a
    running kernel (the widgets use it to fill an output area).
    """
    bundle = pio.renderers["plotly_mimetype"].to_mimebundle(fig.to_dict())
    title = fig.layout.title.text or "figure"
    bundle["text/plain"] = f"<plotly figure: {title}>"
    return bundle


PNG_ENV = "TCSD_PNG"  # "0": write HTML only (no browser is started for PNGs)
PNG_TIMEOUT_ENV = "TCSD_PNG_TIMEOUT"  # seconds kaleido may take to start, and to draw one PNG
PNG_TIMEOUT = 60.0  # its default: the first PNG takes about 2.5 s on a 2-core CPU, later ones 0.3 s
_PNG: dict = {"writer": None, "why": None}  # this process: kaleido's browser (a _PngWriter), why PNGs are off


def png_status() -> str | None:
    """Why PNG figures are not being written in this process, or None while they are."""
    return _PNG["why"]


CHROMIUM_ENV = "TCSD_CHROMIUM"


def chromium() -> str | None:
    """The Chrome or Chromium that PNG figures and the browser test drive: ``$TCSD_CHROMIUM``
    (any Chrome or Chromium binary, for a user without root), else the first of
    ``chromium``, ``chromium-browser`` and ``google-chrome`` on PATH, else the one kaleido
    would find itself (its own download, ``$BROWSER_PATH``, the usual install paths); None
    when there is none. Nothing is started to find out."""
    for name in (os.environ.get(CHROMIUM_ENV), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    try:  # kaleido's search (choreographer's): a browser kaleido downloaded, or a typical path
        from choreographer.browsers.chromium import Chromium  # optional: kaleido's own browser search

        found = Chromium.find_browser(skip_local=False)
    except Exception:  # choreographer absent or its API moved: no further place to look
        return None
    return str(found) if found and os.access(found, os.X_OK) else None


_INSTALL = f"apt-get install chromium, or set {CHROMIUM_ENV} to one"  # what a warning tells the user to do


def _png_off_already() -> bool:
    """PNGs are turned off: by ``TCSD_PNG=0``, or after a warning earlier in this process."""
    return os.environ.get(PNG_ENV, "1") == "0" or _PNG["why"] is not None


def _png_timeout() -> float:
    raw = os.environ.get(PNG_TIMEOUT_ENV)
    try:
        value = float(raw) if raw else PNG_TIMEOUT
    except ValueError:
        raise ValueError(f"{PNG_TIMEOUT_ENV} must be a number of seconds, got {raw!r}") from None
    if not value > 0:
        raise ValueError(f"{PNG_TIMEOUT_ENV} must be more than 0 seconds, got {raw!r}")
    return value


def _png_off(why: str) -> None:
    """Stop writing PNGs for the rest of the process, and say why, once."""
    if _PNG["why"] is None:
        _PNG["why"] = why
        level, frame = 2, sys._getframe(1)
        while frame is not None and frame.f_code.co_filename == __file__:  # point at the caller's line
            level, frame = level + 1, frame.f_back
        warnings.warn(f"PNG figures are not written in this run (the HTML ones are): {why}", RuntimeWarning,
                      stacklevel=level)


class _PngWriter:
    """kaleido's browser on an event loop of its own, in a daemon thread; every wait on it is
    bounded by ``timeout`` seconds.

    kaleido's own sync server waits without a bound: when its browser dies at start (no
    Chrome found) or hangs, ``fig.write_image`` waits forever (the hang this class exists
    to prevent). Here a dead browser raises, a stuck one raises `TimeoutError`, and the
    daemon thread never keeps the process alive.
    """

    def __init__(self, browser: str, timeout: float):
        self.timeout = timeout
        self.loop = asyncio.new_event_loop()

        def run() -> None:
            self.loop.run_forever()
            self.loop.close()

        # a browser that failed leaves kaleido's tasks with errors nobody awaits; we say why once
        self.loop.set_exception_handler(lambda loop, context: None)
        threading.Thread(target=run, name="tcsd-kaleido", daemon=True).start()
        self.kaleido = None
        try:
            self.call(self._open(browser), "start its browser")
        except BaseException:
            self.close()
            raise

    async def _open(self, browser: str) -> None:
        import kaleido  # optional (the [png] extra): PNGs only where it and a browser are

        self.kaleido = kaleido.Kaleido(path=browser, mathjax=False)  # no MathJax (a CDN's); no figure uses TeX
        await self.kaleido.open()

    def call(self, coro, what: str):
        """Run ``coro`` on the writer's loop; wait at most ``timeout`` seconds for it."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(self.timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"kaleido did not {what} within {self.timeout:g} s "
                               f"(set {PNG_TIMEOUT_ENV} to wait longer)") from None

    def png(self, fig: go.Figure) -> bytes:
        """``fig`` drawn as PNG bytes, at plotly's default size unless the figure sets one."""
        size = {"width": fig.layout.width or pio.defaults.default_width,
                "height": fig.layout.height or pio.defaults.default_height}
        return self.call(self.kaleido.calc_fig(fig.to_dict(), opts={"format": "png", **size}), "draw a PNG")

    def close(self) -> None:
        """Close the browser (bounded), then stop the loop; never raises."""
        try:
            if self.kaleido is not None:
                self.call(self.kaleido.close(), "close its browser")
        except BaseException:
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)


def _close_writer() -> None:
    writer, _PNG["writer"] = _PNG["writer"], None
    if writer is not None:
        writer.close()


def _start_writer() -> _PngWriter | None:
    """The process's PNG writer, started on first use; None (after one warning) when PNGs
    cannot be made. Whether a browser exists is decided before anything is started."""
    if _PNG["writer"] is not None:
        return _PNG["writer"]
    try:
        import kaleido  # noqa: F401  optional (the [png] extra)
    except ImportError:
        _png_off("kaleido is not installed (pip install kaleido)")
        return None
    browser = chromium()
    if browser is None:
        _png_off(f"no Chrome or Chromium found ({_INSTALL})")
        return None
    try:
        writer = _PngWriter(browser, _png_timeout())
    except Exception as err:  # a browser that dies at start, or never answers
        _png_off(f"{_why(err)} (browser {browser}; kaleido needs a working Chrome or Chromium: {_INSTALL})")
        return None

    _PNG["writer"] = writer
    atexit.register(_close_writer)
    return writer


def _why(err: BaseException) -> str:
    """``Type: first line of the message`` (choreographer's errors carry a tuple of lines)."""
    text = str(err.args[0] if len(err.args) > 1 else err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__


def png_available() -> bool:
    """Whether PNG figures can be written here: finds a browser, starts kaleido with it and
    draws one small figure (a few seconds, bounded), then closes it again. False, after one
    warning, when it cannot. The `tcsd study` runner asks once before the notebooks run, so
    that a run without a browser warns once, not once per notebook."""
    if _png_off_already():
        return False
    started = _PNG["writer"] is None
    if _png_bytes(go.Figure(go.Scatter(x=[0, 1], y=[0, 1]))) is None:
        return False
    if started:
        _close_writer()
    return True


def _png_bytes(fig: go.Figure) -> bytes | None:
    """``fig`` drawn as PNG by the process's writer (started if needed); None, after one
    warning, when the browser is missing, dead or stuck (the writer is then closed)."""
    writer = _start_writer()
    if writer is None:
        return None
    try:
        return writer.png(fig)
    except Exception as err:
        _close_writer()
        _png_off(f"{_why(err)} (kaleido needs a working Chrome or Chromium: {_INSTALL})")
        return None


def _write_png(fig: go.Figure, path: Path) -> Path | None:
    """``fig`` as a PNG through kaleido, which drives a Chrome or Chromium (Debian's
    ``chromium`` works). Kaleido's browser is started once per process and reused: about
    2.5 s for the first figure, then 0.2-0.3 s each (2-core CPU). A dead or stuck browser
    turns PNGs off for the rest of the process, with one warning."""
    if _png_off_already():
        return None
    data = _png_bytes(fig)
    if data is None:
        return None
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)
    return path


def show(fig: go.Figure, name: str, out_dir: str | os.PathLike) -> None:
    """Save ``fig`` as ``out_dir/<name>`` (`save_figure`) and show it: the one call a notebook
    makes per figure."""
    save_figure(fig, name, out_dir)
    fig.show()


def save_figure(fig: go.Figure, name: str, out_dir: str | os.PathLike) -> Path:
    """Write a figure as ``out_dir/<name>.html`` and ``out_dir/<name>.png``.

    The HTML loads plotly.js from ``plotly.min.js`` written once beside it (about 4 MB per
    folder, not per figure), so the figures open offline. The PNG is for reading without a
    browser (report.md embeds some). When a PNG cannot be made (no kaleido, no Chromium),
    or it fails or takes longer than ``$TCSD_PNG_TIMEOUT`` seconds, a warning says why once per
    process and the rest of the run writes HTML only (`png_status`); ``TCSD_PNG=0`` turns PNGs
    off.
    Both files are written under a temporary name and renamed, so a killed run never
    leaves a half-written figure.

    Args:
        fig: the figure.
        name: file stem, for example ``"01_overlap_vs_tau"`` (letters, digits, ``._-``).
        out_dir: the folder (created), usually ``files.figure_dir(profile)``.

    Returns:
        The path of the HTML file.
    """
    if not re.fullmatch(r"[\w.-]+", name) or name.startswith("."):
        raise ValueError(f"figure name must be a plain file stem (letters, digits, ._-), got {name!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.html"
    with atomic_path(path) as tmp:  # plotly.min.js lands beside it, in out_dir
        fig.write_html(str(tmp), include_plotlyjs="directory", full_html=True)
    _write_png(fig, out_dir / f"{name}.png")
    return path
