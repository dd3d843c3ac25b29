"""The prompt generator reproduces the committed prompt sets from the templates file."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"


def _generator():
    spec = importlib.util.spec_from_file_location("make_prompts",
                                                  ROOT / "scripts" / "make_prompts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_templates_file_is_valid_json():
    data = json.loads((DATA / "prompt_templates.json").read_text(encoding="utf-8"))
    assert set(data) >= {"instructions", "math"}
    draws = _generator().DRAWS
    for s in data["instructions"]:
        assert s["draw"] in draws, s["task"]
        assert s["subjects"], s["task"]


def test_generator_reproduces_committed_files_byte_for_byte(tmp_path):
    assert _generator().main(["--out", str(tmp_path)]) == 0
    for name in ["instructions.jsonl", "math.jsonl"]:
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), name
