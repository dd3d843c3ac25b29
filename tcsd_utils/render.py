"""How a figure leaves the process: the notebook's renderer, a widget's display data, files.

The figure functions (`tcsd_utils.plots`) only draw; this module shows and saves what they
return. `use_notebook_renderer` makes ``fig.show()`` emit only the plotly JSON MIME type,
which JupyterLab renders and which keeps notebooks small; `mime_bundle` is the same display
data built without a kernel (the sliders of `tcsd_utils.widgets`); `save_figure` writes a
figure as HTML (plotly.js written once per folder, so it opens offline) and as PNG through
``kaleido`` and a Chromium. All three are importable from `tcsd_utils.plots` too, where the
notebooks call them.
"""

from __future__ import annotations

import os
import re
import shutil
import warnings
from pathlib import Path

import plotly.graph_objects as go

from .files import atomic_path

__all__ = ["MIME", "use_notebook_renderer", "mime_bundle", "save_figure", "png_status", "PNG_ENV"]

MIME = "application/vnd.plotly.v1+json"  # the plotly JSON MIME type JupyterLab renders


def use_notebook_renderer(renderer: str = "plotly_mimetype") -> None:
    """Make ``fig.show()`` in a notebook emit ``renderer`` (default: plotly JSON only).

    The default notebook renderer of plotly also embeds plotly.js (about 4 MB) in the
    notebook; the JSON MIME type is a few kB per figure and JupyterLab draws it with the
    ``jupyterlab-plotly`` extension that ships with plotly. Call it once, at the top of a
    notebook; it changes plotly's process-wide default, nothing else.
    """
    import plotly.io as pio

    pio.renderers.default = renderer


def mime_bundle(fig: go.Figure) -> dict:
    """The display data of a figure: the plotly JSON MIME type plus a text/plain line.

    This is what ``fig.show()`` emits under `use_notebook_renderer`, built without a
    running kernel (the widgets use it to fill an output area).
    """
    import plotly.io as pio

    bundle = pio.renderers["plotly_mimetype"].to_mimebundle(fig.to_dict())
    title = fig.layout.title.text or "figure"
    bundle["text/plain"] = f"<plotly figure: {title}>"
    return bundle


PNG_ENV = "TCSD_PNG"  # "0": write HTML only (no browser is started for PNGs)
_PNG: dict = {"server": False, "why": None}  # this process: kaleido's browser started? why PNGs are off


def png_status() -> str | None:
    """Why PNG figures are not being written in this process, or None while they are."""
    return _PNG["why"]


CHROMIUM_ENV = "TCSD_CHROMIUM"


def chromium() -> str | None:
    """The Chrome or Chromium that PNG figures and the browser test drive: ``$TCSD_CHROMIUM``
    (any Chrome or Chromium binary, for a user without root), else the first of
    ``chromium``, ``chromium-browser`` and ``google-chrome`` on PATH; None when none is found."""
    for name in (os.environ.get(CHROMIUM_ENV), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _png_off(why: str) -> None:
    """Stop writing PNGs for the rest of the process, and say why, once."""
    if _PNG["why"] is None:
        _PNG["why"] = why
        warnings.warn(f"PNG figures are not written in this run (the HTML ones are): {why}", RuntimeWarning,
                      stacklevel=3)


def _write_png(fig: go.Figure, path: Path) -> Path | None:
    """``fig`` as a PNG through kaleido, which drives a Chrome or Chromium (Debian's
    ``chromium`` works). Kaleido's browser is started once per process and reused: about
    2.5 s for the first figure, then 0.2-0.3 s each (2-core CPU)."""
    if os.environ.get(PNG_ENV, "1") == "0":
        return None
    if _PNG["why"] is not None:
        return None
    try:
        import kaleido
    except ImportError:
        _png_off("kaleido is not installed (pip install kaleido)")
        return None
    try:
        if not _PNG["server"]:
            import atexit

            browser = chromium()  # None: kaleido looks for one itself
            kaleido.start_sync_server(silence_warnings=True, **({"path": browser} if browser else {}))
            atexit.register(kaleido.stop_sync_server, silence_warnings=True)
            _PNG["server"] = True
        with atomic_path(path) as tmp, warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The kopts argument is ignored")
            fig.write_image(str(tmp), format="png")
        return path
    except Exception as err:  # kaleido present but no browser it can drive, for example
        _png_off(f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''} "
                 f"(kaleido needs Chrome or Chromium: apt-get install chromium, or set {CHROMIUM_ENV} to one)")
        return None


def save_figure(fig: go.Figure, name: str, out_dir: str | os.PathLike) -> Path:
    """Write a figure as ``out_dir/<name>.html`` and ``out_dir/<name>.png``.

    The HTML loads plotly.js from ``plotly.min.js`` written once beside it (about 4 MB per
    folder, not per figure), so the figures open offline. The PNG is for reading without a
    browser (report.md embeds some). When a PNG cannot be made (no kaleido, no Chromium),
    a warning says why once per process and the rest of the run writes HTML only
    (`png_status`); ``TCSD_PNG=0`` turns PNGs off.
    Both files are written under a temporary name and renamed, so a killed run never
    leaves a half-written figure.

    Args:
        fig: the figure.
        name: file stem, for example ``"01_overlap_vs_tau"`` (letters, digits, ``._-``).
        out_dir: the folder (created), usually ``study.figure_dir(profile)``.

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
