"""nbval settings for the notebooks (STYLE.md item 8): compare only what is meant to match.

``make test`` runs ``pytest --nbval-lax`` over this folder: every cell must run without
error, and only cells whose first line is ``# NBVAL_CHECK_OUTPUT`` have their outputs
compared with the committed ones. Those cells print short, rounded, machine-independent
summaries and never timings. Figures and widgets are left out of the comparison even
there: plotly JSON carries random ids and float noise, widget views carry random model ids,
and HTML tables repeat what the text output already checks.

(This folder has an ``__init__.py`` so that pytest imports this file as
``notebooks.conftest``: otherwise it would replace ``tests/conftest.py`` as the module
``conftest`` that the unit tests import their helpers from.)
"""

SKIP_COMPARE = (
    "application/vnd.plotly.v1+json",
    "application/vnd.jupyter.widget-view+json",
    "application/vnd.jupyter.widget-state+json",
    "text/html",
)


def pytest_collectstart(collector):
    """Extend nbval's list of output keys that are never compared."""
    if hasattr(collector, "skip_compare"):  # nbval's IPyNbFile
        collector.skip_compare = tuple(collector.skip_compare) + SKIP_COMPARE
