"""The dry run (`tcsd_utils.plan`): a profile is checked before it runs, and its plan printed."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from tcsd_utils.cli import main
from tcsd_utils import plan
from tcsd_utils.profiles import SETTINGS


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no test reaches for the Hub


def test_the_old_gpu_settings_are_refused_naming_both_numbers():
    with pytest.raises(plan.ProfileError) as err:
        plan.check("gpu", n_eval_prompts=128, gpu="H200")
    assert "128" in str(err.value) and "only 83" in str(err.value) and "'instructions+composed' (test split)" in str(err.value)


def test_a_refused_profile_stops_tcsd_study_before_any_notebook(monkeypatch, tmp_path, capsys):
    import dataclasses

    import papermill

    monkeypatch.setitem(SETTINGS, "smoke", dataclasses.replace(SETTINGS["smoke"], n_eval_prompts=500))
    monkeypatch.setattr(papermill, "execute_notebook", lambda *a, **k: pytest.fail("a notebook ran"))
    monkeypatch.setenv("TCSD_OUTPUTS", str(tmp_path))
    assert main(["study", "--profile", "smoke"]) == 2
    said = capsys.readouterr().err
    assert "refused before it started" in said and "asks for 500" in said and "only 170" in said
    assert not (tmp_path / "smoke" / "notebooks").exists()


@pytest.mark.parametrize("profile", sorted(SETTINGS))
def test_every_profile_passes_its_dry_run(profile):
    gpu = "H200" if profile not in ("smoke", "cpu") else None
    checked = plan.check(profile, gpu=gpu, dry_run=True)
    statuses = {status for _, status, _ in checked.checks}
    assert statuses <= {"ok", "skipped"}
    skipped = [detail for _, status, detail in checked.checks if status == "skipped"]
    assert bool(skipped) == SETTINGS[profile].from_hub  # only the Hub's parts, each with its reason
    assert all("HF_HUB_OFFLINE" in d for d in skipped)


def test_a_real_run_refuses_what_the_dry_run_skips():
    with pytest.raises(plan.ProfileError, match="Hub is not reachable"):
        plan.check("paper", gpu="H200")


def test_memory_and_disk_are_refused_with_their_numbers(monkeypatch):
    monkeypatch.setattr(plan, "_memory_free_gb", lambda device: 0.5)
    with pytest.raises(plan.ProfileError, match=r"memory: the plan needs about [\d.]+ GB on cpu, 0.5 GB are free"):
        plan.check("smoke", device="cpu")
    with pytest.raises(plan.ProfileError, match=r"memory: .* 131.3 GB are free"):
        plan.check("paper", gpu="H200", dry_run=True, n_eval_prompts=40_000)


def test_the_plan_scales_with_the_settings():
    costs = {"step_b": 0.2, "step_1": 0.1, "forward": 1.0, "train": 1.5, "train_lm": 1.0, "device": "made up"}
    base = plan.estimate(plan.check("cpu", dry_run=True), costs)
    cpu = SETTINGS["cpu"]
    twice = plan.estimate(plan.check("cpu", dry_run=True, offline=replace(cpu.offline, steps=2 * cpu.offline.steps),
                                     online=replace(cpu.online, steps=2 * cpu.online.steps)), costs)
    stage = dict((n, s) for n, _, s in base.stages)
    stage2 = dict((n, s) for n, _, s in twice.stages)
    assert stage2["offline KD drafts"] == pytest.approx(2 * stage["offline KD drafts"])
    assert twice.seconds - base.seconds == pytest.approx(stage["offline KD drafts"] + cpu.online.steps * costs["train"]
                                                         * len(plan._drafts(cpu)["online"]))
    # online KD at tau_kd 0 trains as offline KD at tau_kd 0 (`profiles.trained_as`): counted once
    assert len(plan._drafts(cpu)["online"]) == len(plan._drafts(cpu)["offline"]) - 1
    apart = plan.estimate(plan.check("cpu", dry_run=True, online=replace(cpu.online, lr=2e-3)), costs)
    assert {n: s for n, _, s in apart.stages}["online KD drafts"] > stage["online KD drafts"]
    assert math.isclose(base.seconds, sum(s for _, _, s in base.stages))
    text = plan.format_plan(base)
    assert "teacher samples (train)" in text and "total" in text and "made up" in text


def test_online_kd_that_generates_every_step_is_the_costly_plan():
    costs = plan.gpu_costs(SETTINGS["gpu"], "H200")
    stored = plan.estimate(plan.check("gpu", gpu="H200", dry_run=True), costs)
    generating = plan.estimate(plan.check("gpu", gpu="H200", dry_run=True,
                                          online=SETTINGS["gpu"].online.__class__(mode="online", source="target",
                                                                                  steps=2000, batch_size=32,
                                                                                  max_new_tokens=128)), costs)
    online = {n: s for n, _, s in stored.stages}["online KD drafts"]
    assert {n: s for n, _, s in generating.stages}["online KD drafts"] > 20 * online


def test_dry_run_measures_this_machine_and_prints_the_plan(capsys):
    assert main(["study", "--profile", "smoke", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "profile smoke: checks" in out and "plan (costs: cpu" in out and "total" in out


def test_dry_run_for_a_gpu_uses_its_datasheet(capsys):
    assert main(["study", "--profile", "paper", "--dry-run", "--gpu", "H200"]) == 0
    out = capsys.readouterr().out
    assert "H200 (datasheet estimate)" in out and "skipped" in out
    with pytest.raises(SystemExit):
        main(["study", "--profile", "smoke", "--gpu", "H200"])
    assert main(["study", "--profile", "smoke", "--dry-run", "--gpu", "A100"]) == 2


def test_settings_that_cannot_run_are_refused_by_name():
    with pytest.raises(plan.ProfileError) as err:
        plan.check("smoke", spec_prompts=9, samples_per_prompt=0, k=0)
    said = str(err.value)
    assert "spec_prompts: 9 timed prompts are taken from the 8 held-out ones" in said
    assert "samples_per_prompt: must be a whole number, 1 or more, got 0" in said and "k: must be" in said
    with pytest.raises(plan.ProfileError, match=r"'math' \(unseen split\): .* asks for 200, but the split has only 150"):
        plan.check("cpu", n_eval_prompts=200)
