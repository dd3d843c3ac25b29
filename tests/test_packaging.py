"""The two ways to the environment (pip via pyproject.toml, conda via environment.yml) agree."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

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


def _notebooks():
    import json
    from pathlib import Path

    return {nb.name: json.loads(nb.read_text()) for nb in sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))}


def test_the_notebooks_defaults_are_the_smoke_profiles_parameters():
    """One source for the settings: every value papermill passes for the smoke profile is the
    notebook's own default (its ``parameters`` cell), so a smoke run and nbval see the same."""
    from tcsd_utils.profiles import notebook_parameters

    smoke = notebook_parameters("smoke")
    checked = 0
    for name, nb in _notebooks().items():
        cells = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(cells) == 1, f"{name}: one parameters cell"
        defaults: dict = {}
        exec("".join(cells[0]["source"]), {}, defaults)
        assert defaults["PROFILE"] == "smoke", name
        for key in smoke.keys() & defaults.keys():
            assert defaults[key] == smoke[key], f"{name}: {key} = {defaults[key]!r}, smoke profile {smoke[key]!r}"
            checked += 1
    assert checked >= 3  # notebook 01 takes N_PROMPTS, MAX_NEW_TOKENS and TAUS


def test_an_unrun_panel_shows_a_widget_or_a_note_not_its_python_repr():
    """Opened without running, a panel cell shows the saved widget (or a note to run the
    notebook), never ``VBox(children=(FloatSlider(...`` (the explore issue)."""
    found = []
    for name, nb in _notebooks().items():
        for i, cell in enumerate(nb["cells"]):
            for out in cell.get("outputs", []):
                text = "".join(out.get("data", {}).get("text/plain", []))
                if text.lstrip().startswith(("VBox(", "HBox(", "FloatSlider(", "Output(", "Dropdown(")):
                    found.append(f"{name} cell {i}: {text[:60]}")
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
    bad.write_text(bad.read_text() + "\n\ndef _up():\n    from .cli import main  # noqa: F401\n")
    broken = subprocess.run([str(lint), "--config", str(root / ".importlinter")], cwd=tmp_path,
                            capture_output=True, text=True)
    assert broken.returncode != 0
    assert "tcsd_utils.temperature -> tcsd_utils.cli" in broken.stdout, broken.stdout


def test_the_readme_is_short_and_its_figures_are_in_findings():
    """The README states what a user needs; every figure it gives (a time, a size, a test
    count, an alpha) is one that FINDINGS.md records with its date, machine and command, so
    the two cannot drift apart."""
    import re

    readme, findings = (ROOT / "README.md").read_text(), (ROOT / "FINDINGS.md").read_text()
    assert len(readme.splitlines()) <= 250
    figure = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?: min \d+ s| min| s| h| GB| tests)(?!\w)|(?<![\w.])0\.\d{2,3}(?!\d)")
    stated = [m.group() for m in figure.finditer(readme)]
    assert len(stated) >= 5  # the timings table and the alpha it quotes
    missing = [f for f in stated if f not in findings]
    assert not missing, f"figures in README.md that FINDINGS.md does not record: {missing}"


def _defined(tree) -> set[str]:
    """The names a module's top level defines: functions, classes and assignments (not imports)."""
    import ast

    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    return names


def _imports_not_from_home(sources: dict[str, str]) -> list[str]:
    """Each ``from tcsd_utils.X import name`` (or ``from .X import name`` inside the package)
    whose name module X does not define: it is taken from a module that imported it."""
    import ast

    package = ROOT / "tcsd_utils"
    homes = {p.stem: _defined(ast.parse(p.read_text())) for p in package.glob("*.py")}
    bad = []
    for where, text in sources.items():
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, ast.ImportFrom) or not node.module:
                continue
            inside = node.level == 1 and where.startswith("tcsd_utils/")
            if not (inside or node.module.startswith("tcsd_utils.")):
                continue
            module = node.module.removeprefix("tcsd_utils.")
            for alias in node.names:
                if module in homes and alias.name not in homes[module]:
                    bad.append(f"{where}: {alias.name} from {module}")
    return bad


def test_every_name_is_imported_from_the_module_that_defines_it():
    """One home per name: the package, the notebooks, benchmarks, scripts and tests import each
    name from the module that defines it, never through a module that imported it."""
    import json

    sources = {str(p.relative_to(ROOT)): p.read_text()
               for folder in ("tcsd_utils", "benchmarks", "scripts", "tests") for p in (ROOT / folder).rglob("*.py")}
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        sources[str(nb.relative_to(ROOT))] = "\n".join(line for line in code.splitlines()
                                                       if not line.lstrip().startswith(("%", "!")))
    assert _imports_not_from_home(sources) == []
    # and the check sees a re-export: `claims` is defined in rules, and report imports it
    assert _imports_not_from_home({"x.py": "from tcsd_utils.report import claims\n"}) == ["x.py: claims from report"]
