"""Where a run's files go and how they are written: the bottom of the house.

Output folders (``outputs/<run>/``), atomic writes (a killed run never leaves a half-written
file that a later run trusts), JSON beside a config, and progress bars that become plain
text lines when the study runs headless. Every other module may import this one; it
imports none of them.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import socket
import sys
import time
import uuid
from pathlib import Path

__all__ = ["repo_root", "output_dir", "figure_dir", "atomic_path", "temp_name", "is_temp", "artifacts", "sweep_temps",
           "TEMP_PREFIX", "STALE_SECONDS", "write_json", "canonical", "cached", "progress", "TEXT_PROGRESS"]

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


# A temporary file or folder is named ``.tmp-<host>-<pid>-<random>-<name>``: unique across
# the hosts and processes that share a filesystem, and never read as a result (`artifacts`).
TEMP_PREFIX = ".tmp-"
# A temporary file that another host left this long ago is taken as left by a killed writer.
STALE_SECONDS = 3600


def temp_name(path: str | os.PathLike) -> Path:
    """A temporary sibling of ``path``, unique per host, process and call (it keeps the
    suffix, so that a ``.ipynb`` is still one)."""
    path = Path(path)
    return path.with_name(f"{TEMP_PREFIX}{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}-{path.name}")


def is_temp(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a temporary file of `atomic_path` (a write in progress, or one
    that a killed writer left): never a result."""
    return Path(path).name.startswith(TEMP_PREFIX)


def artifacts(folder: str | os.PathLike, pattern: str) -> list[Path]:
    """The results under ``folder`` matching ``pattern`` (``Path.glob``), sorted, without
    temporary files, which ``glob`` would match too."""
    return sorted(p for p in Path(folder).glob(pattern) if not any(is_temp(part) for part in p.parts))


def _alive(pid: int) -> bool:
    """Whether process ``pid`` of this host still runs (a killed one not yet reaped by its
    parent, a zombie, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    with contextlib.suppress(OSError, IndexError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def sweep_temps(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary files that killed writers left for ``path``: this host's whose
    process is gone, and other hosts' older than `STALE_SECONDS` (a live writer on another
    host cannot be asked). Returns what was removed."""
    path, host, removed = Path(path), socket.gethostname(), []
    if not path.parent.is_dir():
        return removed
    for temp in path.parent.iterdir():
        name = temp.name
        if not (name.startswith(TEMP_PREFIX) and name.endswith(f"-{path.name}")):
            continue
        parts = name[len(TEMP_PREFIX):-len(path.name) - 1].rsplit("-", 2)  # host (may hold "-"), pid, random
        if len(parts) != 3 or not parts[1].isdigit():
            continue
        stale = False
        if parts[0] == host:
            stale = not _alive(int(parts[1]))
        else:
            with contextlib.suppress(FileNotFoundError):
                stale = time.time() - temp.lstat().st_mtime > STALE_SECONDS
        if stale:
            _remove(temp)
            removed.append(temp)
    return removed


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2`` with ``RENAME_EXCHANGE``); False where
    the system or filesystem cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def _publish(tmp: Path, path: Path) -> None:
    """Put ``tmp`` at ``path`` so that a reader finds the old ``path`` or the new one, never
    none and never half of one. A file is replaced atomically (``os.replace``). A folder is
    renamed onto ``path``; where ``path`` is already a folder (a changed stage, or another
    worker that made the same stage first) the two are exchanged atomically where the system
    can, else the old one is renamed aside first."""
    if not tmp.is_dir():
        os.replace(tmp, path)
        return
    try:
        os.rename(tmp, path)
        return
    except OSError:  # a folder (not empty) is there
        pass
    if _exchange(tmp, path):
        return  # tmp now holds the old folder, removed by the caller
    aside = temp_name(path)
    with contextlib.suppress(FileNotFoundError):
        os.rename(path, aside)
    try:
        os.rename(tmp, path)
    except OSError:  # another writer put its own between the two renames: both are the same stage
        pass
    _remove(aside)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary sibling of ``path``; put it at ``path`` only on success.

    Works for files and folders: whatever the body writes at the yielded path appears at
    ``path`` in one step, or not at all. Safe on a filesystem that several hosts share: the
    temporary name is unique per host, process and call (`temp_name`), the old ``path`` is
    never removed before the new one is in place, two writers of the same stage leave one
    whole artifact, and the temporary files of killed writers are removed (`sweep_temps`)
    the next time ``path`` is written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_temps(path)
    tmp = temp_name(path)
    try:
        yield tmp
        _publish(tmp, path)
    finally:
        if tmp.exists() or tmp.is_symlink():
            _remove(tmp)


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
