"""The prepared device check (scripts/device_check.py), run on the CPU with its tiny models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_device_check_runs_every_part_on_tiny_models_without_the_packages_a_gpu_machine_lacks(tmp_path):
    # the GPU machine has none of these packages: the script must not import them
    absent = ["datasets", "plotly", "kaleido", "papermill", "ipywidgets", "nbformat", "choreographer"]
    code = (f"import sys, runpy; sys.modules.update(dict.fromkeys({absent!r})); "
            f"sys.argv = ['device_check.py', '--tiny', '--out', {str(tmp_path)!r}]; "
            "runpy.run_path('scripts/device_check.py', run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((tmp_path / "device_check.json").read_text())
    assert result["size"] == "tiny" and result["machine"]["torch"]
    parity = result["parity"]["value"]
    assert parity["relative"] < 1e-4 and parity["greedy_tokens_equal"] and parity["same_argmax"]
    assert result["greedy"]["value"] == {"k1": True, "k4": True}
    static = result["static"]["value"]
    assert static["same_greedy_tokens"] and static["graphs"] is False and static["static_plain_ms_per_token"] > 0
    exact = result["exact"]["value"]
    assert exact["passed"] and exact["n"] == 1500 and exact["dof"] >= 10
    assert [r["batch"] for r in result["teacher"]["value"]] == [4, 16, 64]
    assert all(r["tokens_per_s"] > 0 for r in result["teacher"]["value"])
    curve = result["curve"]["value"]
    assert [p["teacher_tokens"] for p in curve] == [2000, 4000, 8000]
    assert all(p["alpha_lo"] <= p["alpha_expected"] <= p["alpha_hi"] for p in curve)
    assert {(r["tau"], r["k"]) for r in result["gamma"]["value"]} == {(0.0, 1), (0.0, 4), (1.0, 1), (1.0, 4)}
    assert sorted(result["figures"]) == ["gamma.png", "learning_curve.png", "teacher_tokens_per_s.png"]
    for name in result["figures"]:
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_spent_budget_skips_the_parts_left_and_says_so(tmp_path):
    done = subprocess.run([sys.executable, "scripts/device_check.py", "--tiny", "--budget", "0", "--out",
                           str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads((tmp_path / "device_check.json").read_text())
    assert all(result[p] == {"skipped": "the budget was spent"}
               for p in ("parity", "greedy", "static", "exact", "teacher", "curve", "gamma"))
