"""What the machine is, and what runs fastest on it.

Batch-1 decoding on a CPU is bound by reading the weights, and which kernel reads them
fastest depends on the machine (the speed issue: a choice fixed on one 2-core CPU made the
plain decoder 0.92x of transformers' on another of the same kind). So:

- `linear`: ``x @ weight.T`` by the kernel measured fastest for the weight's shape and the
  number of new tokens (`choose_kernel`: ``torch.mv``, ``F.linear`` or ``weight @ x.T``,
  timed once per machine and kept under the user's cache folder; ``$TCSD_KERNEL`` forces one);
- `choose_dtype`: bfloat16 or float32 on a CPU, whichever multiplies faster here
  (`tcsd_utils.models.default_dtype` asks it);
- `cpu_info` and `machine_info`: what a figure was measured on;
- `timing_threads`: torch on one thread fewer than the cores while the study times runs.

`tcsd_utils.runners` runs the models with these kernels.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from .files import write_json

__all__ = ["SMALL", "linear", "choose_kernel", "choose_dtype", "kernel_choices", "KERNELS", "KERNEL_ENV", "cpu_info",
           "machine_info", "timing_threads", "timing_thread_count", "TIMING_THREADS_ENV"]

SMALL = 8  # up to this many new tokens count as a verification step (small-batch kernels)


def linear(x, weight):
    """``x @ weight.T`` for x of shape (1, n, in), by the kernel measured fastest for its shape.

    Batch-1 decoding is bound by reading the weights, and which kernel reads them fastest
    depends on the machine: on one 2-core CPU a matrix-vector product ran the target's token
    in 22.7 ms against 29.3 with ``F.linear``; on another of the same kind ``F.linear`` was
    the faster (62 against 96 us for a 1536 x 576 bfloat16 weight). So for one token and for
    a verification step (2 to `SMALL` tokens), each weight shape's kernel is timed once
    (`choose_kernel`); longer inputs take ``F.linear``."""
    n = x.shape[1]
    if n > SMALL:
        return F.linear(x, weight)
    return KERNELS[choose_kernel(weight, n)](x, weight)


def _mv(x, weight):
    if x.shape[1] != 1:
        return F.linear(x, weight)
    return torch.mv(weight, x.view(-1)).view(1, 1, -1)


def _matmul(x, weight):
    n = x.shape[1]
    return (weight @ x.view(n, -1).t().contiguous()).t().reshape(1, n, -1)


KERNELS = {"mv": _mv, "linear": lambda x, weight: F.linear(x, weight), "matmul": _matmul}
KERNEL_ENV = "TCSD_KERNEL"  # force one kernel for every shape: mv (one token; else linear), linear, matmul
_CHOSEN: dict = {}  # (device, dtype, out, in, 1 or SMALL) -> kernel name, this process
_DISK: dict | None = None


def cpu_info() -> tuple[str, set]:
    """The CPU's model name and its feature flags (from /proc/cpuinfo where there is one)."""
    import platform

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


def _machine_key() -> str:
    """The machine a choice was measured on: CPU model, torch, threads, and the GPU's name
    where there is one (a choice for one GPU model is not reused on another)."""
    gpu = f" | {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{cpu_info()[0]} | torch {torch.__version__} | {torch.get_num_threads()} threads{gpu}"


def _cache_file():
    import os
    from pathlib import Path

    base = os.environ.get("TCSD_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tcsd"
    return Path(base) / "kernels.json"


def _disk() -> dict:
    """Choices measured earlier on this machine (same CPU model, torch version, threads)."""
    import json

    global _DISK
    if _DISK is None:
        try:
            _DISK = json.loads(_cache_file().read_text()).get(_machine_key(), {})
        except (OSError, ValueError):
            _DISK = {}
    return _DISK


def _save_disk() -> None:
    import json

    path = _cache_file()
    try:
        data = json.loads(path.read_text()) if path.is_file() else {}
        data[_machine_key()] = _DISK
        write_json(data, path)
    except (OSError, ValueError):
        pass  # a read-only home: the choice is only kept for this process


def _time(kernel, x, weight, calls: int = 8) -> float:
    import time

    sync = torch.cuda.synchronize if weight.device.type == "cuda" else (lambda: None)
    best = float("inf")
    for _ in range(3):
        kernel(x, weight)
        sync()
        t0 = time.perf_counter()
        for _ in range(calls):
            kernel(x, weight)
        sync()
        best = min(best, time.perf_counter() - t0)
    return best / calls


@torch.inference_mode()
def choose_kernel(weight, n: int) -> str:
    """The fastest kernel for ``weight`` and ``n`` new tokens (one token, or a verification
    step of up to `SMALL`), timed once per machine and kept in ``~/.cache/tcsd/kernels.json``
    (``$TCSD_CACHE_DIR`` moves it); ``$TCSD_KERNEL`` forces one."""
    width = 1 if n == 1 else SMALL
    key = (weight.device.type, str(weight.dtype).replace("torch.", ""), *weight.shape, width)
    if key in _CHOSEN:
        return _CHOSEN[key]
    import os

    forced = os.environ.get(KERNEL_ENV)
    if forced:
        if forced not in KERNELS:
            raise ValueError(f"${KERNEL_ENV} must be one of {sorted(KERNELS)}, got {forced!r}")
        _CHOSEN[key] = forced
        return forced
    text = "|".join(map(str, key))
    kind = _disk().get(text)
    if kind not in KERNELS:
        g = torch.Generator(device=weight.device).manual_seed(0)  # timing input only: leave the global RNG alone
        x = torch.randn(1, max(n, 2) if width > 1 else 1, weight.shape[1], generator=g, device=weight.device
                        ).to(weight.dtype)
        candidates = ("mv", "linear", "matmul") if width == 1 else ("linear", "matmul")
        kind = min(candidates, key=lambda name: _time(KERNELS[name], x, weight))
        _disk()[text] = kind
        _save_disk()
    _CHOSEN[key] = kind
    return kind


DTYPE_SHAPE = (1536, 576)  # a SmolLM2 MLP weight (out, in): what one decoding step reads most


@torch.inference_mode()
def choose_dtype() -> torch.dtype:
    """bfloat16 or float32 for models on this CPU, whichever runs a decoder's products faster.

    bfloat16 halves the bytes a token reads, but only CPUs with bfloat16 instructions
    (avx512_bf16, AMX) multiply in it natively; elsewhere torch converts on the fly. On a
    2-core AMD EPYC with avx2 only (2026-11-30), a 1536 x 576 product took 115 us in bfloat16
    against 88 us in float32 for one token, and 3408 us against 701 for 32 tokens (a teacher
    batch), so the study ran 4.6 times slower in bfloat16. Both are timed here once per
    machine (one token and a batch of 32, interleaved, the best of three; under a second) and
    the choice is kept in ``~/.cache/tcsd/kernels.json`` beside the kernels'."""
    text = "dtype|cpu"
    chosen = _disk().get(text)
    if chosen in ("bfloat16", "float32"):
        return getattr(torch, chosen)
    g = torch.Generator().manual_seed(0)  # timing input only: leave the global RNG alone
    weight = torch.randn(*DTYPE_SHAPE, generator=g)
    xs = [torch.randn(1, n, DTYPE_SHAPE[1], generator=g) for n in (1, 32)]
    total = {torch.bfloat16: 0.0, torch.float32: 0.0}
    for x in xs:
        for dtype in total:  # the same shapes, one after the other
            total[dtype] += _time(KERNELS["linear"], x.to(dtype), weight.to(dtype), calls=20) / x.shape[1]
    best = min(total, key=total.get)
    _disk()[text] = str(best).replace("torch.", "")
    _save_disk()
    return best


def kernel_choices() -> dict:
    """The kernels chosen so far in this process: ``"device|dtype|out|in|width" -> name``."""
    return {"|".join(map(str, k)): v for k, v in sorted(_CHOSEN.items(), key=str)}


def machine_info() -> dict:
    """What a figure was measured on: CPU model, the flags that matter for bfloat16, cores,
    torch threads and version, load average (1 min), and the GPU if one is used."""
    import os

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
    import os

    wanted = os.environ.get(TIMING_THREADS_ENV)
    if wanted is not None:
        if not (wanted.strip().isdigit() and int(wanted) >= 1):
            raise ValueError(f"{TIMING_THREADS_ENV} must be a whole number >= 1, got {wanted!r}")
        return int(wanted)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores - 1)
