"""Atomic writes (`files.atomic_path`): safe for several processes and hosts on one filesystem.

A reader finds the old artifact or the new one, never none and never half of one; two writers
of the same stage leave one whole artifact; a killed writer's temporary file is never read as
a result and is removed by the next write of the same path.
"""

import json
import multiprocessing as mp
import os
import time

import pytest

from tcsd_utils import files
from tcsd_utils.files import artifacts, atomic_path, is_temp, sweep_temps, temp_name, write_json


def _write_folder(path, tag: str) -> None:
    with atomic_path(path) as tmp:
        tmp.mkdir()
        (tmp / "data.txt").write_text(tag * 1000)
        (tmp / "config.json").write_text(json.dumps({"tag": tag}))


def _whole(path) -> bool:
    """The folder holds one writer's data and that writer's config, both complete."""
    tag = json.loads((path / "config.json").read_text())["tag"]
    return (path / "data.txt").read_text() == tag * 1000


def test_temp_names_are_unique_and_never_results(tmp_path):
    target = tmp_path / "cell.json"
    a, b = temp_name(target), temp_name(target)
    assert a != b and a.parent == target.parent and a.name.endswith("-cell.json")
    assert is_temp(a) and not is_temp(target)
    write_json({"x": 1}, target)
    a.write_text("{half")  # what a killed writer leaves
    assert artifacts(tmp_path, "*.json") == [target]


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path):
    target = tmp_path / "a.json"
    write_json({"v": 1}, target)
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("{half")
        raise RuntimeError("killed")
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "rename-aside"])
def test_a_folder_is_replaced_whole(tmp_path, monkeypatch, exchange):
    if not exchange:  # a filesystem without an atomic exchange
        monkeypatch.setattr(files, "_exchange", lambda a, b: False)
    target = tmp_path / "teacher"
    _write_folder(target, "a")
    _write_folder(target, "b")
    assert _whole(target) and json.loads((target / "config.json").read_text()) == {"tag": "b"}
    assert [p.name for p in tmp_path.iterdir()] == ["teacher"]


def test_a_killed_writers_temp_is_swept_by_the_next_write(tmp_path):
    target = tmp_path / "draft"
    # a child process dies in the middle of writing (no cleanup runs)
    child = mp.get_context("fork").Process(target=_die_mid_write, args=(target,))
    child.start()
    child.join(60)
    assert child.exitcode == 3
    left = [p for p in tmp_path.iterdir() if is_temp(p)]
    assert len(left) == 1 and not target.exists()
    assert artifacts(tmp_path, "*") == []  # never taken for a result
    _write_folder(target, "r")  # the retry
    assert _whole(target)
    assert [p.name for p in tmp_path.iterdir()] == ["draft"]


def _die_mid_write(target):
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "data.txt").write_text("half")
        os._exit(3)


def test_other_hosts_temps_are_removed_only_when_stale(tmp_path):
    target = tmp_path / "cost.json"
    fresh = tmp_path / f"{files.TEMP_PREFIX}other-host-1-abcd1234-cost.json"
    old = tmp_path / f"{files.TEMP_PREFIX}other-host-2-abcd1234-cost.json"
    fresh.write_text("{}")
    old.write_text("{}")
    past = time.time() - files.STALE_SECONDS - 60
    os.utime(old, (past, past))
    mine_alive = temp_name(target)  # this process, alive: a write in progress
    mine_alive.write_text("{}")
    assert sweep_temps(target) == [old]
    assert fresh.exists() and mine_alive.exists()


def _race(target, tag, start):
    start.wait()
    for _ in range(20):
        _write_folder(target, tag)


def test_two_writers_racing_for_one_stage_leave_one_whole_artifact(tmp_path):
    target = tmp_path / "teacher"
    ctx = mp.get_context("fork")
    start = ctx.Barrier(2)
    workers = [ctx.Process(target=_race, args=(target, tag, start)) for tag in "xy"]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert [w.exitcode for w in workers] == [0, 0]
    assert _whole(target)
    assert [p.name for p in tmp_path.iterdir()] == ["teacher"]


def test_a_writer_killed_but_not_yet_reaped_counts_as_gone(tmp_path):
    target = tmp_path / "cell.json"
    pid = os.fork()
    if pid == 0:  # the child dies mid-write; the parent does not reap it yet (a zombie)
        with atomic_path(target) as tmp:
            tmp.write_text("{half")
            os._exit(3)
    try:
        for _ in range(500):
            stat = open(f"/proc/{pid}/stat").read()
            if stat.rsplit(")", 1)[1].split()[0] == "Z":
                break
            time.sleep(0.01)
        assert [p for p in tmp_path.iterdir() if is_temp(p)]
        write_json({"v": 2}, target)
        assert [p.name for p in tmp_path.iterdir()] == ["cell.json"]
    finally:
        os.waitpid(pid, 0)
