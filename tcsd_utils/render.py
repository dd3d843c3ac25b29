"""How a figure leaves the process: the notebook's renderer, a widget's display data, files.

The figure functions (`tcsd_utils.plots`) only draw; this module shows and saves what they
return. `use_notebook_renderer` makes ``fig.show()`` emit only the plotly JSON MIME type,
which JupyterLab renders and which keeps notebooks small; `mime_bundle` is the same display
data built without a kernel (the sliders of `tcsd_utils.widgets`); `save_figure` writes a
figure as HTML (plotly.js written once per folder, so it opens offline) and as PNG when
``kaleido`` is installed. All three are importable from `tcsd_utils.plots` too, where the
notebooks call them.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import plotly.graph_objects as go

__all__ = ["MIME", "use_notebook_renderer", "mime_bundle", "save_figure"]

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


def save_figure(fig: go.Figure, name: str, out_dir: str | os.PathLike) -> Path:
    """Write a figure as ``out_dir/<name>.html`` (and ``.png`` when kaleido is installed).

    The HTML loads plotly.js from ``plotly.min.js`` written once beside it (about 4 MB per
    folder, not per figure), so the figures open offline.
    The file is written under a temporary name and renamed, so a killed run never leaves
    a half-written figure.

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
    tmp = out_dir / f".{name}.html.tmp-{os.getpid()}"
    try:
        fig.write_html(str(tmp), include_plotlyjs="directory", full_html=True)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    try:
        import kaleido  # noqa: F401  (optional: static images)
    except ImportError:
        return path
    try:
        fig.write_image(str(out_dir / f"{name}.png"))
    except Exception as err:  # kaleido present but unusable (e.g. no Chrome): HTML suffices
        warnings.warn(f"PNG of figure {name!r} not written: {err}", RuntimeWarning, stacklevel=2)
    return path
