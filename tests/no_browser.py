"""Run a command as a newcomer's machine would: with no Chrome or Chromium to be found.

    python tests/no_browser.py COMMAND [ARG ...]

The browser is hidden from every place tcsd and kaleido look (`tcsd_utils.render.chromium`):
``$TCSD_CHROMIUM`` and ``$BROWSER_PATH`` are unset; kaleido's own download is out of reach
(``$XDG_DATA_HOME`` points at an empty folder); and every browser on PATH or at one of
kaleido's usual install paths is covered, in a private mount namespace (``unshare -m``, as
root), by an empty file that cannot be executed. The machine itself is not changed.

The PNG tests (tests/test_plots.py, tests/test_study.py) and CI's newcomer run (.ci/run)
use it. It exits with 3, before running the command, when a browser stays visible (not
root, no ``unshare``): a caller must not mistake such a run for one without a browser.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def _known() -> tuple[set[str], set[str]]:
    """Executable names and install paths of the browsers kaleido can drive."""
    names, paths = set(NAMES), set()
    try:
        from choreographer.browsers._chrome_constants import chromium_based_browsers

        for info in chromium_based_browsers.values():
            names.update(info.exe_names)
            paths.update(info.typical_paths)
    except ImportError:  # kaleido's helper absent: the names above, and Debian's path
        paths.add("/usr/bin/chromium")
    return names, paths


def visible_browsers(env: dict) -> list[str]:
    """Every browser file a lookup under ``env`` could reach (symlinks resolved)."""
    names, paths = _known()
    found = {shutil.which(n, path=env.get("PATH", "")) for n in names} | {p for p in paths if os.path.exists(p)}
    return sorted({str(Path(p).resolve()) for p in found if p})


def hidden_env(base: dict | None = None, data_home: str | None = None) -> dict:
    """``base`` (default: this process's environment) without the browser variables, with
    kaleido's download folder moved to an empty ``data_home``."""
    env = dict(os.environ if base is None else base)
    for key in ("TCSD_CHROMIUM", "BROWSER_PATH"):
        env.pop(key, None)
    env["XDG_DATA_HOME"] = data_home or tempfile.mkdtemp(prefix="no-browser-")
    return env


def command(cmd: list[str], env: dict) -> list[str]:
    """``cmd`` wrapped so that it runs with every visible browser covered; raises
    `RuntimeError` when one is visible and cannot be covered."""
    found = visible_browsers(env)
    if not found:
        return list(cmd)
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        raise RuntimeError(f"a browser is installed ({', '.join(found)}) and cannot be hidden here "
                           "(that needs root and unshare)")
    empty = tempfile.NamedTemporaryFile(prefix="no-browser-", delete=False)
    empty.close()
    os.chmod(empty.name, 0o644)
    cover = 'e=$1; shift; while [ "$1" != -- ]; do mount --bind "$e" "$1" || exit 3; shift; done; shift; exec "$@"'
    return ["unshare", "-m", "sh", "-c", cover, "sh", empty.name, *found, "--", *cmd]


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    env = hidden_env()
    try:
        cmd = command(argv, env)
    except RuntimeError as err:
        print(f"no_browser: {err}", file=sys.stderr)
        return 3
    return subprocess.call(cmd, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
