"""How tcsd times a cost, and on what: the clock, the timing threads, the machine.

- `Clock`: wall-clock time, synchronised on CUDA; the one way tcsd times a cost (the
  decoders, `tcsd_utils.evaluate`'s timed runs and `tcsd_utils.bench` use it);
- `timing_threads`: torch on one thread fewer than the cores while the study times runs;
- `cpu_info` and `machine_info`: what a figure was measured on.
"""

from __future__ import annotations

import contextlib
import os
import platform
import time

import torch

__all__ = ["Clock", "cpu_info", "machine_info", "timing_threads", "timing_thread_count", "TIMING_THREADS_ENV"]


class Clock:
    """Wall-clock time; on CUDA it synchronises first so a split between models is true.

    The one way tcsd times a cost: the decoders, `evaluate.cost_ratio` and `bench` use it.
    """

    def __init__(self, device):
        self.cuda = torch.device(device).type == "cuda"

    def __call__(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()


def cpu_info() -> tuple[str, set]:
    """The CPU's model name and its feature flags (from /proc/cpuinfo where there is one)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return model, flags


def machine_info() -> dict:
    """What a figure was measured on: CPU model, the flags that matter for bfloat16, cores,
    torch threads and version, load average (1 min), and the GPU if one is used."""
    model, flags = cpu_info()
    info = {"cpu": model, "flags": sorted(flags & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}),
            "cores": os.cpu_count(), "threads": torch.get_num_threads(), "torch": torch.__version__,
            "load_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


TIMING_THREADS_ENV = "TCSD_TIMING_THREADS"  # torch threads while the study times runs (default: cores - 1)


@contextlib.contextmanager
def timing_threads():
    """Run the body with torch on one thread fewer than the cores this process may use
    (``$TCSD_TIMING_THREADS`` to choose), then restore the thread count.

    On a CPU, torch's threads wait for each other at every operation. With as many threads
    as cores, any other process (the notebook server, a kernel, a test run) that takes a
    core stalls all of them: on a 2-core machine under load some runs of one cell took 20
    times as long per step as their neighbours, and gamma's interval became meaningless
    (FINDINGS.md, "A steadier gamma"). A core left free absorbs the rest of the machine. The
    study's timings (c and every gamma) run inside this; the thread count is recorded with
    the machine (`machine_info`) and in every timed cell's configuration."""
    before = torch.get_num_threads()
    torch.set_num_threads(timing_thread_count())
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def timing_thread_count() -> int:
    """The torch threads `timing_threads` runs with: ``$TCSD_TIMING_THREADS``, else one fewer
    than the cores this process may use (at least 1)."""
    wanted = os.environ.get(TIMING_THREADS_ENV)
    if wanted is not None:
        if not (wanted.strip().isdigit() and int(wanted) >= 1):
            raise ValueError(f"{TIMING_THREADS_ENV} must be a whole number >= 1, got {wanted!r}")
        return int(wanted)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores - 1)
