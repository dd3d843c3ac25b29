"""The two ways to the environment (pip via pyproject.toml, conda via environment.yml) agree."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _name(spec: str) -> str:
    return re.split(r"[<>=!~ \[;]", spec.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject_specs() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        specs += extra
    return {_name(s): s.replace(" ", "") for s in specs}


def _environment_specs() -> dict[str, str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    pip = [line.strip()[2:] for line in lines[start + 1:] if line.strip().startswith("- ")]
    return {_name(s): s.replace(" ", "") for s in pip}


def test_environment_yml_lists_the_same_dependencies():
    py, env = _pyproject_specs(), _environment_specs()
    assert set(py) == set(env), (set(py) ^ set(env))
    for name, spec in py.items():
        if name != "torch":  # environment.yml pins the CPU build the Makefile installs
            assert env[name] == spec, (name, env[name], spec)


def test_makefile_pins_the_same_torch_and_target_package():
    makefile = (ROOT / "Makefile").read_text()
    env = (ROOT / "environment.yml").read_text()
    torch_pin = re.search(r"TORCH_SPEC \?= (\S+)", makefile).group(1)
    smollm2_pin = re.search(r"SMOLLM2_SPEC \?= (\S+)", makefile).group(1)
    assert f"- {torch_pin}" in env
    assert smollm2_pin in env


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "make test" in (ROOT / "README.md").read_text()
    assert "make study" in (ROOT / "README.md").read_text()


def test_committed_notebooks_hold_no_machine_paths():
    """Outputs must carry repo-relative paths only: an absolute path names someone's machine."""
    import json
    import re
    from pathlib import Path

    found = []
    for nb in sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb")):
        for i, cell in enumerate(json.loads(nb.read_text())["cells"]):
            text = json.dumps(cell.get("outputs", []))
            for hit in re.findall(r"(?:PosixPath\(|WindowsPath\(|['\" ])(/(?:home|root|work|tmp|Users|opt|mnt)/[^'\" ]*)",
                                  text):
                found.append(f"{nb.name} cell {i}: {hit}")
    assert not found, found


def test_the_import_layers_hold_and_an_upward_import_is_named(tmp_path):
    """`.importlinter` is the house's plan; `make test` runs it. An import from a bottom
    module up to the command must fail with both modules named."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    lint = Path(sys.executable).parent / "lint-imports"
    if not lint.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    ok = subprocess.run([str(lint), "--config", str(root / ".importlinter")], cwd=root, capture_output=True, text=True)
    assert ok.returncode == 0 and "1 kept, 0 broken" in ok.stdout, ok.stdout + ok.stderr
    shutil.copytree(root / "tcsd_utils", tmp_path / "tcsd_utils", ignore=shutil.ignore_patterns("__pycache__"))
    bad = tmp_path / "tcsd_utils" / "temperature.py"
    bad.write_text(bad.read_text() + "\n\ndef _up():\n    from .study import main  # noqa: F401\n")
    broken = subprocess.run([str(lint), "--config", str(root / ".importlinter")], cwd=tmp_path,
                            capture_output=True, text=True)
    assert broken.returncode != 0
    assert "tcsd_utils.temperature -> tcsd_utils.study" in broken.stdout, broken.stdout
