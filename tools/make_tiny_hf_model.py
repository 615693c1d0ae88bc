#!/usr/bin/env python3
"""Makes tests/data/tiny_llama: a tiny random LlamaForCausalLM saved by transformers'
save_pretrained (bf16, sharded safetensors with an index), plus checksums.json, which
tests/io/safetensors.cpp compares with what turbine reads.

checksums.json, per tensor: dtype, shape, fnv1a64 of the tensor's raw little-endian bytes (as a
hex string), the float64 sum of its values, and its first 4 values as floats.

Run from the repository root:  python3 tools/make_tiny_hf_model.py
"""
import json
import os
import shutil
import sys

import safetensors
import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "tiny_llama")


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def main() -> None:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
        rms_norm_eps=1e-5, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    # Random norms instead of ones, so a misplaced tensor cannot pass by accident.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(torch.randn_like(p))
    shutil.rmtree(OUT, ignore_errors=True)
    model.save_pretrained(OUT, safe_serialization=True, max_shard_size="8KB")

    sums = {"_made_by": "tools/make_tiny_hf_model.py",
            "_versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                          "safetensors": safetensors.__version__, "python": sys.version.split()[0]},
            "tensors": {}}
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().contiguous().cpu()
        raw = t.view(torch.int16).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()
        flat = t.float().flatten()
        sums["tensors"][name] = {
            "dtype": {torch.bfloat16: "BF16", torch.float16: "F16", torch.float32: "F32"}[t.dtype],
            "shape": list(t.shape),
            "fnv1a64": f"{fnv1a64(raw):016x}",
            "sum": float(flat.double().sum()),
            "first": [float(x) for x in flat[:4]],
        }
    with open(os.path.join(OUT, "checksums.json"), "w") as f:
        json.dump(sums, f, indent=1, sort_keys=True)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f"wrote {OUT}: {sorted(os.listdir(OUT))}, {total} bytes")
    assert total < 300_000, "tiny model must stay under 300 KB"


if __name__ == "__main__":
    main()
