"""Speed benchmark: our decoders against transformers, and against the theoretical bound.

The study's subject is wall-time speedup (the paper's gamma; Ouyang et al. 2024, arXiv
2410.10141), so the decoder must be a fair instrument. In one process, on the same prompts,
seed, temperature and lengths, after a warm-up and interleaved repeat by repeat, this runs:

    ours_plain        plain target decoding (`speculative.autoregressive_generate`)
    hf_plain          transformers ``generate()`` on the target
    hf_assisted       transformers assisted generation, ``assistant_model=draft`` with
                      ``num_assistant_tokens=k``, a constant schedule and the confidence
                      threshold off, so both sides use the same k
    ours_speculative  our speculative sampling with the same k; with ``draft_tau`` its draft
                      samples at that temperature instead of the target's (still exact;
                      transformers' assistant keeps the target's)

and reports tokens/s (median, min, max over repeats), gamma (the wall-time speedup) over the faster of the two
plain baselines (so a slow baseline never inflates it), taken within each repeat and reported as
the median over repeats with its range (the machine's drift between repeats cancels), our empirical alpha, the measured
c, Leviathan et al.'s predicted speedup (arXiv 2211.17192, Eq. 1 and Theorem 3.8) from the
per-token alpha (``DecodeStats.alpha_tested``) and c, and our efficiency = measured /
predicted. Leviathan's prediction assumes a verification step (the target's forward over
k + 1 tokens) costs one single-token forward; the benchmark measures that cost (``verify``,
`evaluate.verify_cost`) and also reports the bound with it, ``bound``, and the share of it
reached, ``of bound``. Every run generates exactly ``max_new_tokens`` tokens (EOS ignored) so
that tokens/s compare.
"""

from __future__ import annotations

import resource
import statistics

import torch

from .evaluate import cost_ratio, verify_cost
from .leviathan import best_k, predicted_gamma
from .runners import CausalLMRunner, kernel_choices
from .speculative import autoregressive_generate, speculative_generate
from .temperature import check_tau, generation_config, local_rng
from .timing import Clock, machine_info

__all__ = ["METHODS", "run_bench", "format_table", "peak_memory_gb", "regressions"]

METHODS = ("ours_plain", "hf_plain", "hf_assisted", "ours_speculative")


def _hf_generate(target, prompt, tau, max_new_tokens, seed, pad, draft=None, k=4):
    gen = generation_config(tau, max_new_tokens, pad, None, min_new_tokens=max_new_tokens)
    extra = {}
    if draft is not None:
        gen.num_assistant_tokens = k
        gen.num_assistant_tokens_schedule = "constant"
        gen.assistant_confidence_threshold = 0.0
        draft.generation_config.num_assistant_tokens = k  # the assistant keeps its own copy
        draft.generation_config.num_assistant_tokens_schedule = "constant"
        draft.generation_config.assistant_confidence_threshold = 0.0
        extra["assistant_model"] = draft
    ids = torch.tensor([prompt], device=target.device)
    with local_rng(target.device), torch.inference_mode():  # the caller's random state is left as it was
        torch.manual_seed(seed)
        out = target.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=gen, **extra)
    return out.shape[1] - ids.shape[1], None


def _run(method, target, draft, prompt, tau, k, max_new_tokens, seed, pad, fast=True, draft_tau=None):
    """One decode; returns (new tokens, (accepted, drafted) or None). ``fast=False`` runs our
    decoders on transformers' forward and cache instead of `runners.LlamaRunner`;
    ``draft_tau`` is our speculative decoder's draft temperature (None: ``tau``)."""
    if method.startswith("ours") and not fast:
        target, draft = CausalLMRunner(target), CausalLMRunner(draft)
    if method == "ours_plain":
        out = autoregressive_generate(target, prompt, max_new_tokens, tau, seed=seed, eos_token_id=[])
        return out.stats.new_tokens, None
    if method == "ours_speculative":
        out = speculative_generate(target, draft, prompt, max_new_tokens, k, tau, draft_tau=draft_tau, seed=seed,
                                   eos_token_id=[])
        return out.stats.new_tokens, (out.stats.accepted, out.stats.drafted, out.stats.rejections)
    return _hf_generate(target, prompt, tau, max_new_tokens, seed, pad,
                        draft if method == "hf_assisted" else None, k)


def regressions(result: dict, tolerance: float = 0.05) -> list[str]:
    """Temperatures where our plain decoder is more than ``tolerance`` slower than
    transformers' ``generate()``: a regression of the fast path on this machine. The two are
    compared within each repeat (they ran back to back) and the median ratio over the repeats
    decides, as for gamma; a result without per-repeat ``runs`` compares the medians."""
    out = []
    for tau in sorted({r["tau"] for r in result["rows"]}):
        by = {r["method"]: r for r in result["rows"] if r["tau"] == tau}
        if "ours_plain" not in by or "hf_plain" not in by:
            continue
        ours, hf = by["ours_plain"], by["hf_plain"]
        paired = bool(ours.get("runs") and hf.get("runs"))
        ratio = (statistics.median(o / h for o, h in zip(ours["runs"], hf["runs"])) if paired
                 else ours["tokens_per_s"] / hf["tokens_per_s"])
        if ratio < 1 - tolerance:
            out.append(f"tau={tau:g}: our plain decoder {ours['tokens_per_s']:.1f} tok/s is {1 - ratio:.0%} "
                       f"slower than transformers generate() {hf['tokens_per_s']:.1f} tok/s"
                       + (" (the median of the repeats' ratios)" if paired else ""))
    return out


def peak_memory_gb(device=None) -> float:
    """Peak resident memory of this process (Linux reports KiB), or of CUDA if larger."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
    if device is not None and torch.device(device).type == "cuda":
        peak = max(peak, torch.cuda.max_memory_allocated() / 1024 ** 3)
    return peak


def _auto_k(target, draft, prompts, tau, max_new_tokens, seed, c, verify: dict, fast=True, draft_tau=None) -> int:
    """The k that maximises the speedup this machine allows at this tau: per-token alpha from
    an untimed pilot pass at k = 1 over the prompts, c and the verification cost of each k
    measured (`leviathan.best_k` with ``verify``; the costs are kept in ``verify``, k -> cost).
    On a CPU a step of k + 1 tokens can cost well over one forward, and not monotonically in k
    (FINDINGS.md), so Leviathan's k, which assumes it costs one, can be the wrong one."""
    accepted = tested = 0
    for i, prompt in enumerate(prompts):
        _, (acc, _, rejections) = _run("ours_speculative", target, draft, prompt, tau, 1, max_new_tokens,
                                       seed + i, 0, fast, draft_tau)
        accepted, tested = accepted + acc, tested + acc + rejections

    def cost(k: int) -> float:  # 5 repeats, not 3: the choice rests on differences of about 0.2
        if k not in verify:
            verify[k] = verify_cost(target, k, repeats=5, fast=fast)
        return verify[k]

    return best_k(accepted / tested if tested else 0.0, c, verify=cost)


def run_bench(target, draft, prompts: list[list[int]], taus=(0.0, 0.5, 1.0), k: int | str = 4,
              max_new_tokens: int = 64, repeats: int = 3, seed: int = 0, pad: int = 0,
              methods=METHODS, progress: bool = True, fast: bool = True, draft_tau: float | None = None) -> dict:
    """Time the four decoders at each temperature.

    Args:
        target, draft: the pair (same vocabulary, same device); ``draft`` may instead be a
            dict {tau: draft}, the draft each temperature uses (the aligned drafts, each
            distilled at its tau; they share one shape, so c is measured on the first).
        prompts: chat-formatted prompt ids; each repeat decodes all of them once per method.
        taus: decoding temperatures.
        k: draft tokens per step, for both speculative decoders; ``"auto"`` picks it per
            temperature from a pilot pass's alpha, the measured c and the measured cost of
            each k's verification step (`_auto_k`).
        max_new_tokens: tokens every run generates (EOS ignored).
        repeats: timed repeats (after one warm-up pass); medians are reported.
        seed: sampling seed of prompt i is ``seed + i``, the same for every method.
        pad: padding id for transformers.
        methods: a subset of `METHODS`.
        fast: our decoders run Llama models with `runners.LlamaRunner` (the default, as in the
            study); False runs them on transformers' forward and cache, which separates the
            gain of our decoding loop from that of the leaner forward.
        draft_tau: the temperature our speculative decoder's draft samples at, the same at
            every ``tau`` (None, the default: the draft samples at ``tau``, as in the study).
            Notebook 06 asks whether a draft hotter than the target accepts more.

    Returns:
        ``{"c": ..., "k": ..., "rows": [one dict per (tau, method)]}``.
    """
    if not prompts:
        raise ValueError("empty prompt set: the benchmark needs at least one prompt")
    taus = [check_tau(t) for t in taus]
    drafts = draft if isinstance(draft, dict) else {tau: draft for tau in taus}
    missing = [tau for tau in taus if tau not in drafts]
    if missing:
        raise ValueError(f"no draft for tau {', '.join(map(str, missing))}: drafts are given for {sorted(drafts)}")
    draft_tau = None if draft_tau is None else check_tau(draft_tau, "draft_tau")
    device, clock = target.device, Clock(target.device)
    if device.type == "cuda":  # the peak of decoding, not of loading the models
        torch.cuda.reset_peak_memory_stats(device)
    before = machine_info()
    cost = cost_ratio(target, drafts[taus[0]], fast=fast)
    rows = []
    if k != "auto" and (not isinstance(k, int) or k < 1):
        raise ValueError(f"k must be an integer >= 1 or 'auto', got {k!r}")
    k_arg, verify = k, {}  # verify: k -> cost of a verification step in one-token forwards
    for tau in taus:
        draft = drafts[tau]
        k = (_auto_k(target, draft, prompts, tau, max_new_tokens, seed, cost["c"], verify, fast, draft_tau)
             if k_arg == "auto" else k_arg)
        for method in methods:  # warm-up: one decode each
            _run(method, target, draft, prompts[0], tau, k, max_new_tokens, seed, pad, fast, draft_tau)
        times = {m: [] for m in methods}
        tokens = {m: 0 for m in methods}
        accepted = drafted = rejections = 0
        for rep in range(repeats):
            for method in methods:  # interleaved, so drift hits every method alike
                t0 = clock()
                n_tokens = 0
                for i, prompt in enumerate(prompts):
                    n, acc = _run(method, target, draft, prompt, tau, k, max_new_tokens, seed + i, pad, fast,
                                  draft_tau)
                    n_tokens += n
                    if acc is not None and rep == 0:
                        accepted, drafted, rejections = accepted + acc[0], drafted + acc[1], rejections + acc[2]
                times[method].append(n_tokens / (clock() - t0))
                tokens[method] = n_tokens
            if progress:
                print(f"tau={tau:g} repeat {rep + 1}/{repeats}: " + ", ".join(
                    f"{m} {times[m][-1]:.1f} tok/s" for m in methods), flush=True)
        # each repeat runs every method back to back, so a method's speedup is taken within its
        # repeat (over that repeat's faster plain run) and then the median over repeats: a drift
        # of the machine between repeats cancels instead of landing on one side of a ratio
        baseline = [max(times[m][rep] for m in methods if m.endswith("plain")) for rep in range(repeats)]
        alpha_drafted = accepted / drafted if drafted else float("nan")
        alpha_tok = accepted / (accepted + rejections) if accepted + rejections else float("nan")
        predicted = predicted_gamma(alpha_tok, cost["c"], k) if drafted else float("nan")
        if k not in verify:
            verify[k] = verify_cost(target, k, fast=fast)
        bound = predicted_gamma(alpha_tok, cost["c"], k, verify[k]) if drafted else float("nan")
        for method in methods:
            paired = [t / b for t, b in zip(times[method], baseline)]
            row = {"tau": tau, "method": method, "k": k, "tokens_per_s": statistics.median(times[method]),
                   "min": min(times[method]), "max": max(times[method]), "runs": times[method],
                   "new_tokens": tokens[method], "gamma": statistics.median(paired), "gamma_min": min(paired),
                   "gamma_max": max(paired)}
            if method == "ours_speculative":
                row.update(draft_tau=tau if draft_tau is None else draft_tau, alpha_drafted=alpha_drafted, alpha_tested=alpha_tok, predicted_gamma=predicted,
                           efficiency=row["gamma"] / predicted, verify_cost=verify[k], bound=bound,
                           of_bound=row["gamma"] / bound)
            rows.append(row)
    peak = peak_memory_gb(device)

    machine = {**before, "load_1min_after": machine_info()["load_1min"]}
    return {"machine": machine, "kernels": kernel_choices(), "c": cost["c"], "target_ms": cost["target_ms"], "draft_ms": cost["draft_ms"], "k": k_arg,
            "max_new_tokens": max_new_tokens, "prompts": len(prompts), "repeats": repeats,
            "peak_memory_gb": peak, "device": str(device), "runner": "fast" if fast else "transformers",
            "draft_tau": draft_tau, "verify_costs": verify, "rows": rows}


def _range(row: dict) -> str:
    """gamma's range over the repeats, where the row has it (results before it do not)."""
    return f"{row['gamma_min']:.2f}-{row['gamma_max']:.2f}" if "gamma_min" in row else ""


def format_table(result: dict) -> str:
    """The benchmark as a fixed-width text table."""
    head = (f"c = {result['c']:.3f} (target {result['target_ms']:.1f} ms/token, draft "
            f"{result['draft_ms']:.1f} ms/token), k = {result['k']}, {result['prompts']} prompts x "
            f"{result['max_new_tokens']} tokens, median of {result['repeats']}, peak memory "
            f"{result['peak_memory_gb']:.2f} GB, {result['device']}, our forward: {result.get('runner', 'fast')}, "
            f"our draft samples at "
            + ("the target's tau" if result.get("draft_tau") is None else f"tau_q = {result['draft_tau']:g}"))
    if isinstance(result.get("draft"), dict):  # one draft per tau (tcsd bench --draft aligned)
        head += "\ndrafts: " + ", ".join(f"tau {t}: {name}" for t, name in result["draft"].items())
    m = result.get("machine")
    if m:
        head = (f"machine: {m['cpu']} ({', '.join(m['flags']) or 'no avx512/amx'}), {m['cores']} cores, torch "
                f"{m['torch']} with {m['threads']} threads, load {m['load_1min']} before, "
                f"{m.get('load_1min_after')} after\n" + head)
        if max(m["load_1min"] or 0, m.get("load_1min_after") or 0) > m["cores"]:
            head = "WARNING: the load exceeded the core count while timing; the figures are noisy\n" + head
    if result.get("kernels"):
        kinds = {}
        for key, name in result["kernels"].items():
            kinds.setdefault(name, []).append(key.split("|", 2)[2])
        head += "\nkernels (out|in|tokens): " + "; ".join(f"{n}: {', '.join(v)}" for n, v in sorted(kinds.items()))
    if result.get("verify_costs"):
        head += "\nverification cost by k (one-token forwards): " + ", ".join(
            f"{k}: {v:.2f}" for k, v in sorted(result["verify_costs"].items(), key=lambda kv: int(kv[0])))
    lines = [head, f"{'tau':>5} {'k':>2} {'method':<17} {'tok/s':>7} {'min':>7} {'max':>7} {'gamma':>8} "
                   f"{'range':>11} "
                   f"{'a/draft':>7} {'a/test':>6} {'predicted':>9} {'efficiency':>10} {'verify':>6} {'bound':>5} "
                   f"{'of bound':>8}"]
    for r in result["rows"]:
        extra = (f"{r['alpha_drafted']:>7.3f} {r['alpha_tested']:>6.3f} {r['predicted_gamma']:>9.2f} "
                 f"{r['efficiency']:>10.2f} {r['verify_cost']:>6.2f} {r['bound']:>5.2f} {r['of_bound']:>8.2f}"
                 if "alpha_drafted" in r else "")
        lines.append(f"{r['tau']:>5g} {r['k']:>2} {r['method']:<17} {r['tokens_per_s']:>7.1f} {r['min']:>7.1f} "
                     f"{r['max']:>7.1f} {r['gamma']:>7.2f}x {_range(r):>11} {extra}")
    return "\n".join(lines)
