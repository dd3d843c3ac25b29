"""Where a run's files go and how they are written: the bottom of the house.

Output folders (``outputs/<run>/``), atomic writes (a killed run never leaves a half-written
file that a later run trusts), JSON beside a config, and progress bars that become plain
text lines when the study runs headless. Every other module may import this one; it
imports none of them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from pathlib import Path

__all__ = ["repo_root", "output_dir", "figure_dir", "atomic_path", "write_json", "canonical", "cached", "progress",
           "TEXT_PROGRESS"]

# Set (to any value) by ``tcsd study`` for the notebook kernels it starts, so that papermill
# can relay progress bars to the terminal as text lines.
TEXT_PROGRESS = "TCSD_TEXT_PROGRESS"


def repo_root() -> Path:
    """The project folder (the one holding ``tcsd_utils/``)."""
    return Path(__file__).resolve().parent.parent


def output_dir(profile: str = "smoke", root: str | os.PathLike | None = None) -> Path:
    """``outputs/<profile>/`` (created). ``$TCSD_OUTPUTS`` or ``root`` moves ``outputs/``."""
    base = Path(root or os.environ.get("TCSD_OUTPUTS") or repo_root() / "outputs")
    path = base / profile
    path.mkdir(parents=True, exist_ok=True)
    return path


def figure_dir(profile: str = "smoke", root=None) -> Path:
    """``outputs/<profile>/figures/`` (created)."""
    path = output_dir(profile, root) / "figures"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary sibling of ``path``; rename it onto ``path`` only on success.

    Works for files and folders: whatever the body writes at the yielded path appears at
    ``path`` in one rename, or not at all.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")  # keeps the suffix (.ipynb)
    try:
        yield tmp
        if path.is_dir() and tmp.is_dir():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def canonical(obj):
    """``obj`` as JSON stores it (tuples as lists, keys as strings, other objects as their
    ``str``): what a config read back from disk is compared with."""
    return json.loads(json.dumps(obj, default=str))


def cached(path, config, key: str | None = None, artifact=None, compare=None):
    """The one cache check of tcsd: a stage's artifact is reused when the JSON at ``path``
    (written beside it with `write_json`, atomically, after the artifact) records the same
    ``config``, so a killed run resumes and a changed setting computes again.

    Args:
        path: the JSON that records the config (a ``config.json`` beside the artifact, or
            the artifact itself when it is a JSON with its config inside).
        config: what the artifact would be made with now.
        key: where in that JSON the config sits (None: the whole file).
        artifact: a file or folder that must exist too (None: ``path`` is the artifact).
        compare: applied to both configs before comparing (to drop settings that do not
            change the artifact, such as how often a training run checkpoints).

    Returns:
        The JSON read from ``path`` when the artifact exists and was made with ``config``,
        else None (read once: a caller whose artifact is that JSON uses it as it is).
    """
    path = Path(path)
    if not path.is_file() or (artifact is not None and not Path(artifact).exists()):
        return None
    try:
        stored = json.loads(path.read_text())
    except ValueError:  # a file cut short by a crash outside tcsd: not a match
        return None
    recorded = stored
    if key is not None:
        if not isinstance(stored, dict) or key not in stored:
            return None
        recorded = stored[key]
    same = compare or (lambda c: c)
    return stored if same(recorded) == same(canonical(config)) else None


def write_json(obj, path) -> Path:
    """Write JSON atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
    return Path(path)


def progress(iterable=None, **kwargs):
    """A progress bar for long work: a widget in JupyterLab; plain text lines, at most one
    every 15 s, when the study runs headless (``tcsd study`` sets ``TCSD_TEXT_PROGRESS``
    so that papermill can relay the bars to the terminal)."""
    if os.environ.get(TEXT_PROGRESS):
        from tqdm.std import tqdm  # deferred: which tqdm (text or widget) is decided per call

        kwargs.setdefault("mininterval", 15.0)
        kwargs.setdefault("file", sys.stdout)
        kwargs["leave"] = True
    else:
        from tqdm.auto import tqdm  # deferred: which tqdm (text or widget) is decided per call
    return tqdm(iterable, **kwargs)
