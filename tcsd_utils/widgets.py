"""ipywidgets panels that wrap the figure functions of `tcsd_utils.plots`.

For exploring Ouyang et al. 2024 (arXiv 2410.10141) in JupyterLab: move the temperature
``tau`` and watch a figure redraw. A panel only wraps a function ``tau -> go.Figure``
(STYLE.md item 7); it computes nothing itself, and a notebook draws the same figure once
without widgets so that headless runs (papermill, nbval) show it too.

The figure goes into an `ipywidgets.Output` whose ``outputs`` are set directly to the
figure's display data (`render.mime_bundle`). That needs no frontend and no running
kernel, so building and redrawing a panel works headless and in tests. (plotly's own
``go.FigureWidget`` would need the ``anywidget`` package since plotly 6.)
"""

from __future__ import annotations

import traceback
from typing import Callable

import ipywidgets as widgets

from .render import mime_bundle
from .temperature import check_tau

__all__ = ["tau_slider"]


def tau_slider(figure_fn: Callable[[float], "object"], tau: float = 1.0, min: float = 0.0,
               max: float = 2.0, step: float = 0.05, description: str = "τ") -> widgets.VBox:
    """A temperature slider above a figure that ``figure_fn(tau)`` redraws on release.

    Args:
        figure_fn: ``tau -> go.Figure``, usually a lambda around a `plots` function.
        tau: the starting temperature.
        min, max, step: the slider's range and step (``tau = 0`` is greedy).
        description: the slider's label.

    Returns:
        ``VBox([FloatSlider, Output])``; ``panel.children[1].outputs`` holds the current
        figure's display data. An error in ``figure_fn`` is shown in the output area
        instead of being lost in the kernel log.
    """
    tau = check_tau(tau)
    if not min <= tau <= max:
        raise ValueError(f"tau={tau} outside the slider range [{min}, {max}]")
    slider = widgets.FloatSlider(value=tau, min=min, max=max, step=step, description=description,
                                 continuous_update=False, readout_format=".2f")
    out = widgets.Output()

    def redraw(change=None):
        try:
            data = mime_bundle(figure_fn(slider.value))
            out.outputs = ({"output_type": "display_data", "data": data, "metadata": {}},)
        except Exception:  # show the error where the figure would be
            out.outputs = ({"output_type": "stream", "name": "stderr",
                            "text": traceback.format_exc()},)

    slider.observe(redraw, names="value")
    redraw()
    return widgets.VBox([slider, out])
