#!/usr/bin/env python3
"""Makes tests/data/tiny_models/: one tiny random-weight model per architecture turbine loads from
Hugging Face directories, each with golden logits and a greedy continuation from transformers.
tests/model/hf_architectures.cpp checks turbine's CPU engine against them.

Run from the repository root (needs torch, transformers >= 5, safetensors; CPU only, ~10 s):

    python3 tools/make_tiny_models.py

Versions used for the committed files: Python 3.11.7, torch 2.15.0+cu132 (CPU), transformers 5.23.0,
safetensors 0.8.0. Every golden.json records them under "versions".

Written under tests/data/tiny_models/<name>/ (config.json, weights, golden.json):

  llama_tied    LlamaForCausalLM, tie_word_embeddings=True (no lm_head.weight in the file), bf16.
  llama_untied  LlamaForCausalLM, own lm_head, llama3 rope scaling (factor 8, low 1, high 4,
                original_max_position_embeddings 32, max_position_embeddings 256), f16. It is
                saved with a small max_shard_size, so it is the sharded one
                (model-0000N-of-0000M.safetensors + model.safetensors.index.json).
  qwen2         Qwen2ForCausalLM (q/k/v biases), 4 query heads on 1 KV head, f32.
  mistral       MistralForCausalLM, sliding_window 8, bf16. The script checks that transformers
                (eager attention) applies the window: logits before position 8 equal those of the
                same weights without a window and differ after it.
  internlm2     transformers has no InternLM2 class, so this is a fresh Llama (no rope scaling)
                whose tensors are renamed to InternLM2's layout (fused, KV-grouped wqkv; w1/w3/w2;
                tok_embeddings; output) with an InternLM2 config.json; bf16. Its goldens are the
                source Llama's.

All models: hidden 64, 2 layers, 4 heads (head_dim 16), 2 KV heads (qwen2: 1), intermediate 96,
vocab 128. Weights are redrawn after construction (see randomize()) so that attention is peaked,
norms are not all ones and biases are not zero: transformers' own init (std 0.02, ones, zeros)
would make attention nearly uniform, which hides rope and masking mistakes.

golden.json: {"versions", "model", "dtype", "notes", "ids": 24 token ids,
  "logits": [24][128] float32 logits of model(ids) (rounded to 6 significant digits),
  "greedy": 8 new ids from generate(do_sample=False, eos_token_id=None),
  "greedy_top2_margin": top-1 minus top-2 logit at each greedy step}.
The reference is the saved directory loaded back with dtype=torch.float32 and
attn_implementation="eager", so it runs exactly the stored (bf16/f16) weights upcast to fp32. Each
greedy step is re-checked with a no-cache forward pass over prompt + new ids.
"""
import json
import os
import shutil
import sys
import tempfile

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import safetensors
import safetensors.torch
import torch
import transformers
from transformers import (AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, MistralConfig,
                          MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "data", "tiny_models")

N_PROMPT = 24
N_NEW = 8
SIZES = dict(vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2, head_dim=16, rms_norm_eps=1e-5,
             bos_token_id=1, eos_token_id=2)
# The GPU engine test makes a larger variant on the GPU machine (its kernels need head_dim 64 or 128):
#   TINY_OUT=/tmp/gpu_models TINY_PROMPT=256 TINY_SIZES='{"hidden_size": 256, "head_dim": 64, ...}' python3 tools/make_tiny_models.py
OUT = os.environ.get("TINY_OUT", OUT)
N_PROMPT = int(os.environ.get("TINY_PROMPT", N_PROMPT))
SIZES.update(json.loads(os.environ.get("TINY_SIZES", "{}")))
VERSIONS = {"python": sys.version.split()[0], "torch": torch.__version__,
            "transformers": transformers.__version__, "safetensors": safetensors.__version__}
DTYPES = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}


def randomize(model: torch.nn.Module, seed: int) -> None:
    """Weights with O(1) activations: linear rows ~ N(0, gain^2 / fan_in), norms ~ 1 + N(0, 0.3^2),
    biases ~ N(0, 0.3^2), embeddings ~ N(0, 0.25^2). q/k get a larger gain so that attention scores are far from uniform."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.3 * torch.randn(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
            elif "embed_tokens" in name:
                # Small next to the sublayers' O(1) outputs: with a tied head, a dominant input
                # embedding makes the model just repeat its last token.
                p.copy_(0.25 * torch.randn(p.shape, generator=g))
            else:
                gain = 2.0 if ("q_proj" in name or "k_proj" in name) else 1.0
                p.copy_(gain / p.shape[1] ** 0.5 * torch.randn(p.shape, generator=g))


def load_reference(path: str):
    m = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager")
    m.eval()
    return m


@torch.no_grad()
def goldens(model, ids: torch.Tensor) -> dict:
    """Logits at every prompt position, and the greedy continuation (re-checked without cache)."""
    logits = model(ids[None]).logits[0].float()  # [tokens, vocab]
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0  # silences the "no pad token" warning; batch of one
    out = model.generate(ids[None], do_sample=False, max_new_tokens=N_NEW, eos_token_id=None,
                         attention_mask=torch.ones_like(ids[None]))
    new = out[0, len(ids):].tolist()
    assert len(new) == N_NEW, new
    margins = []
    for k in range(N_NEW):  # no-cache recheck of every greedy step
        step = model(torch.tensor(ids.tolist() + new[:k])[None]).logits[0, -1]
        top = torch.topk(step, 2).values
        assert int(step.argmax()) == new[k], ("greedy step", k)
        margins.append(float(top[0] - top[1]))
    return {"logits": logits, "greedy": new, "greedy_top2_margin": margins}


def prompt_ids(seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(1000 + seed)
    return torch.randint(0, SIZES["vocab_size"], (N_PROMPT,), generator=g)


def write_golden(path: str, model_name: str, dtype: str, ids: torch.Tensor, gold: dict, notes: list) -> None:
    doc = {
        "versions": VERSIONS,
        "made_by": "tools/make_tiny_models.py",
        "model": model_name,
        "dtype": dtype,
        "notes": notes,
        "ids": ids.tolist(),
        "logits": [[float(f"{x:.6g}") for x in row] for row in gold["logits"].tolist()],
        "greedy": gold["greedy"],
        "greedy_top2_margin": [float(f"{x:.4g}") for x in gold["greedy_top2_margin"]],
    }
    with open(os.path.join(path, "golden.json"), "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")


def rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def save_hf(model, name: str, dtype: str, **save_kwargs) -> str:
    path = os.path.join(OUT, name)
    shutil.rmtree(path, ignore_errors=True)
    model.to(DTYPES[dtype]).save_pretrained(path, safe_serialization=True, **save_kwargs)
    gc = os.path.join(path, "generation_config.json")  # not needed: the goldens pass eos=None
    if os.path.exists(gc):
        os.remove(gc)
    return path


def make_hf_model(name: str, seed: int, cls, config, dtype: str, notes: list, **save_kwargs):
    torch.manual_seed(seed)
    model = cls(config)
    randomize(model, seed)
    path = save_hf(model, name, dtype, **save_kwargs)
    ref = load_reference(path)
    ids = prompt_ids(seed)
    gold = goldens(ref, ids)
    write_golden(path, cls.__name__, dtype, ids, gold, notes)
    return path, ref, ids, gold


def llama_tied() -> None:
    cfg = LlamaConfig(**SIZES, max_position_embeddings=max(128, N_PROMPT + N_NEW), tie_word_embeddings=True)
    path, *_ = make_hf_model("llama_tied", 1, LlamaForCausalLM, cfg, "bf16",
                             ["tie_word_embeddings: the file has no lm_head.weight"])
    assert not any("lm_head" in k for k in safetensors.torch.load_file(os.path.join(path, "model.safetensors")))


def llama_untied() -> None:
    scaling = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 32}
    cfg = LlamaConfig(**SIZES, max_position_embeddings=max(256, N_PROMPT + N_NEW), tie_word_embeddings=False, rope_scaling=scaling)
    notes = ["llama3 rope scaling: with head_dim 16 and theta 1e4 the wavelengths 6.3, 19.9, 62.8, ... "
             "fall in the high-frequency (kept), medium (interpolated) and low-frequency (divided by 8) bands",
             "sharded with max_shard_size 60KB"]
    path, ref, ids, gold = make_hf_model("llama_untied", 2, LlamaForCausalLM, cfg, "f16", notes,
                                         max_shard_size="60KB")
    assert os.path.exists(os.path.join(path, "model.safetensors.index.json")), "expected a sharded save"
    # The scaling must matter for these goldens, or the test could not catch a wrong rope.
    plain_cfg = LlamaConfig(**SIZES, max_position_embeddings=max(256, N_PROMPT + N_NEW), tie_word_embeddings=False)
    plain = LlamaForCausalLM(plain_cfg).eval()
    plain.load_state_dict(ref.state_dict())
    with torch.no_grad():
        d = rel_diff(plain(ids[None]).logits[0], gold["logits"])
    print(f"  llama_untied: logits without llama3 scaling differ by {d:.3g} (relative)")
    assert d > 1e-2


def qwen2() -> None:
    cfg = Qwen2Config(**{**SIZES, "num_key_value_heads": 1}, max_position_embeddings=max(128, N_PROMPT + N_NEW),
                      tie_word_embeddings=False, use_sliding_window=False)
    make_hf_model("qwen2", 3, Qwen2ForCausalLM, cfg, "f32", ["4 query heads share 1 KV head; q/k/v biases"])


def mistral() -> None:
    cfg = MistralConfig(**SIZES, max_position_embeddings=max(128, N_PROMPT + N_NEW), tie_word_embeddings=False, sliding_window=8)
    notes = ["sliding_window 8 (a query sees itself and the 7 keys before it); transformers "
             f"{transformers.__version__} applies it in eager attention (checked by this script)"]
    path, ref, ids, gold = make_hf_model("mistral", 4, MistralForCausalLM, cfg, "bf16", notes)
    # Does transformers apply the window? Same weights without it: equal logits up to position 7,
    # different from position 8 on (where the first key drops out of the window).
    full = load_reference(path)
    full.config.sliding_window = None
    with torch.no_grad():
        no_window = full(ids[None]).logits[0]
    head = rel_diff(no_window[:8], gold["logits"][:8])
    tail = min(rel_diff(no_window[t], gold["logits"][t]) for t in range(8, N_PROMPT))
    print(f"  mistral: window vs no window: positions 0-7 differ by {head:.3g}, positions 8+ by >= {tail:.3g}")
    assert head < 1e-6 and tail > 1e-3, "transformers did not apply sliding_window as expected"


def internlm2() -> None:
    seed, dtype = 5, "bf16"
    torch.manual_seed(seed)
    cfg = LlamaConfig(**SIZES, max_position_embeddings=max(128, N_PROMPT + N_NEW), tie_word_embeddings=False)
    src = LlamaForCausalLM(cfg)
    randomize(src, seed)
    with tempfile.TemporaryDirectory() as tmp:
        src.to(DTYPES[dtype]).save_pretrained(tmp, safe_serialization=True)
        ref = load_reference(tmp)  # the source Llama with the bf16 weights upcast
    ids = prompt_ids(seed)
    gold = goldens(ref, ids)

    sd = {k: v.to(DTYPES[dtype]).contiguous() for k, v in ref.state_dict().items()}
    heads, kv_heads, hd = SIZES["num_attention_heads"], SIZES["num_key_value_heads"], SIZES["head_dim"]
    group = heads // kv_heads
    out = {"model.tok_embeddings.weight": sd["model.embed_tokens.weight"],
           "model.norm.weight": sd["model.norm.weight"],
           "output.weight": sd["lm_head.weight"]}
    for i in range(SIZES["num_hidden_layers"]):
        s, d = f"model.layers.{i}.", f"model.layers.{i}."
        q = sd[s + "self_attn.q_proj.weight"].view(heads, hd, -1)
        k = sd[s + "self_attn.k_proj.weight"].view(kv_heads, hd, -1)
        v = sd[s + "self_attn.v_proj.weight"].view(kv_heads, hd, -1)
        # Grouped by KV head g: its `group` query heads, then key head g, then value head g.
        rows = []
        for g in range(kv_heads):
            rows += [q[g * group + j] for j in range(group)] + [k[g], v[g]]
        out[d + "attention.wqkv.weight"] = torch.cat(rows, 0).contiguous()
        out[d + "attention.wo.weight"] = sd[s + "self_attn.o_proj.weight"]
        out[d + "feed_forward.w1.weight"] = sd[s + "mlp.gate_proj.weight"]
        out[d + "feed_forward.w3.weight"] = sd[s + "mlp.up_proj.weight"]
        out[d + "feed_forward.w2.weight"] = sd[s + "mlp.down_proj.weight"]
        out[d + "attention_norm.weight"] = sd[s + "input_layernorm.weight"]
        out[d + "ffn_norm.weight"] = sd[s + "post_attention_layernorm.weight"]
    assert len(out) == len(sd) - 2 * SIZES["num_hidden_layers"], "every Llama tensor is used once"

    path = os.path.join(OUT, "internlm2")
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    safetensors.torch.save_file(out, os.path.join(path, "model.safetensors"), metadata={"format": "pt"})
    config = {
        "architectures": ["InternLM2ForCausalLM"],
        "model_type": "internlm2",
        "vocab_size": SIZES["vocab_size"],
        "hidden_size": SIZES["hidden_size"],
        "intermediate_size": SIZES["intermediate_size"],
        "num_hidden_layers": SIZES["num_hidden_layers"],
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "hidden_act": "silu",
        "max_position_embeddings": max(128, N_PROMPT + N_NEW),
        "rms_norm_eps": SIZES["rms_norm_eps"],
        "rope_theta": 10000.0,
        "rope_scaling": None,
        "bias": False,
        "tie_word_embeddings": False,
        "bos_token_id": SIZES["bos_token_id"],
        "eos_token_id": SIZES["eos_token_id"],
        "torch_dtype": "bfloat16",
    }
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    write_golden(path, "InternLM2ForCausalLM (goldens from the source LlamaForCausalLM)", dtype, ids, gold,
                 ["no InternLM2 class in transformers: weights are a Llama's, renamed and wqkv packed "
                  "grouped by KV head (q heads of group g, k head g, v head g)"])


def main() -> None:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(OUT, exist_ok=True)
    for make in (llama_tied, llama_untied, qwen2, mistral, internlm2):
        print(make.__name__)
        make()
    total = 0
    for dirpath, _, files in os.walk(OUT):
        total += sum(os.path.getsize(os.path.join(dirpath, f)) for f in files)
    print(f"wrote {OUT}: {total} bytes")


if __name__ == "__main__":
    main()
