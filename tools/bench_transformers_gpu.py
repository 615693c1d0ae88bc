#!/usr/bin/env python3
"""Batch-1 generation speed of Hugging Face transformers on random-init models of the shapes that
`turbine bench generation --random-weights --shape NAME` runs, for a side-by-side ratio.

Each shape is a LlamaForCausalLM built from the same numbers as turbine's model_shape() (InternLM2's
as a Llama config of the same sizes: same matrices and attention), in fp16 on the GPU, with eager
and sdpa attention: batch 1, a random 128-token prompt, 256 new tokens forced with min_new_tokens
(EOS ignored), greedy. One short warm-up, then the median of 3 timed generate() calls; tokens/s =
new tokens / generate() time (prefill included, as turbine's output_tokens_per_s).

  python3 tools/bench_transformers_gpu.py [--shapes a,b] [--attn eager,sdpa] [--turbine-json F ...] [--json OUT]

No network and no weights: random init only. Needs torch and transformers (both on the GPU machine).
"""
import argparse
import json
import statistics
import sys
import time

import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM

# name: hidden, intermediate, layers, heads, kv_heads, head_dim, vocab, ctx, rope theta, tied
# (the same numbers as include/turbine/model/random_weights.hpp)
SHAPES = {
    "smollm2-135m": (576, 1536, 30, 9, 3, 64, 49152, 8192, 100000.0, True),
    "internlm2-1.8b": (2048, 8192, 24, 16, 8, 128, 92544, 32768, 1e6, False),
    "llama2-7b": (4096, 11008, 32, 32, 32, 128, 32000, 4096, 1e4, False),
    "llama3-8b": (4096, 14336, 32, 32, 8, 128, 128256, 8192, 5e5, False),
}


def make_config(name, attn):
    h, inter, layers, heads, kv, hd, vocab, ctx, theta, tied = SHAPES[name]
    cfg = LlamaConfig(hidden_size=h, intermediate_size=inter, num_hidden_layers=layers, num_attention_heads=heads,
                      num_key_value_heads=kv, head_dim=hd, vocab_size=vocab, max_position_embeddings=ctx,
                      rope_theta=theta, tie_word_embeddings=tied, rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2,
                      pad_token_id=0)
    cfg._attn_implementation = attn
    return cfg


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bench_shape(name, attn, args, dtype):
    torch.manual_seed(0)
    prev = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(args.device):  # initialise on the GPU: an 8B model inits in seconds there
            model = LlamaForCausalLM(make_config(name, attn))
    finally:
        torch.set_default_dtype(prev)
    model.eval()
    attn_used = getattr(model.config, "_attn_implementation", attn)
    vocab = SHAPES[name][6]
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(100, min(vocab, 30000), (1, args.prompt), generator=g).to(args.device)
    mask = torch.ones_like(ids)

    def generate(n):
        sync(args.device)
        t = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=n, min_new_tokens=n,
                                 do_sample=False, pad_token_id=0)
        sync(args.device)
        dt = time.perf_counter() - t
        got = out.shape[1] - ids.shape[1]
        if got != n:
            sys.exit(f"bench_transformers_gpu: {name} {attn}: generated {got} tokens, expected {n}")
        return dt

    generate(args.warmup_tokens)
    times = [generate(args.new) for _ in range(args.runs)]
    mem = torch.cuda.max_memory_allocated() / 2**30 if args.device.startswith("cuda") else 0.0
    del model
    if args.device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    med = statistics.median(times)
    return {"shape": name, "attn": attn, "attn_used": attn_used, "prompt_tokens": args.prompt, "new_tokens": args.new, "seconds": times,
            "median_seconds": med, "tokens_per_s": args.new / med, "peak_memory_GiB": mem}


def turbine_rows(paths, prompt, new):
    """shape -> the c=1 row of `turbine bench generation --json` with this prompt/output length."""
    rows = {}
    for p in paths or []:
        with open(p) as f:
            j = json.load(f)
        for r in j.get("results", []):
            if r.get("concurrency") == 1 and r.get("prompt_tokens") == prompt and r.get("output_tokens") == new \
                    and "error" not in r:
                rows[j.get("shape") or j.get("model")] = r
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated: " + ", ".join(SHAPES))
    ap.add_argument("--attn", default="eager,sdpa", help="attention implementations, comma-separated")
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--new", type=int, default=256, help="new tokens (forced with min_new_tokens)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--warmup-tokens", type=int, default=16)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="fp16", choices=["fp16", "bf16", "fp32"])
    ap.add_argument("--budget-s", type=float, default=0, help="skip what is left once this many seconds have passed")
    ap.add_argument("--turbine-json", nargs="*", help="JSON files of turbine bench generation, for the ratio")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    shapes = [s for s in args.shapes.split(",") if s]
    for s in shapes:
        if s not in SHAPES:
            sys.exit(f"bench_transformers_gpu: unknown shape '{s}' (known: {', '.join(SHAPES)})")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("bench_transformers_gpu: no CUDA device (use --device cpu for a smoke test)")
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[args.dtype]
    dev_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(f"transformers {transformers.__version__}, torch {torch.__version__}, {dev_name}, {args.dtype}, "
          f"prompt {args.prompt}, {args.new} new tokens, median of {args.runs}", flush=True)
    start = time.perf_counter()
    results = []
    for name in shapes:
        for attn in [a for a in args.attn.split(",") if a]:
            if args.budget_s and time.perf_counter() - start > args.budget_s:
                print(f"  {name} {attn}: skipped (over the {args.budget_s:.0f} s budget)", flush=True)
                continue
            t = time.perf_counter()
            r = bench_shape(name, attn, args, dtype)
            results.append(r)
            print(f"  {name:15s} {attn:6s} ({r['attn_used']}) {r['tokens_per_s']:8.1f} tok/s  (runs {', '.join(f'{x:.2f}' for x in r['seconds'])} s;"
                  f" {time.perf_counter() - t:.0f} s with init)", flush=True)

    tur = turbine_rows(args.turbine_json, args.prompt, args.new)
    print()
    print(f"{'shape':15s} {'eager t/s':>10s} {'sdpa t/s':>10s} | {'turbine t/s':>11s} {'(decode)':>9s} | {'ratio vs best HF':>16s}")
    summary = []
    for name in shapes:
        hf = {r["attn"]: r["tokens_per_s"] for r in results if r["shape"] == name}
        t = tur.get(name)
        best = max(hf.values()) if hf else None
        ratio = t["output_tokens_per_s"] / best if t and best else None
        summary.append({"shape": name, "transformers_tokens_per_s": hf,
                        "turbine_output_tokens_per_s": t["output_tokens_per_s"] if t else None,
                        "turbine_decode_tokens_per_s": t["decode_tokens_per_s"] if t else None,
                        "ratio_vs_best_transformers": ratio})
        fmt = lambda v, w: f"{v:{w}.1f}" if v is not None else f"{'-':>{w}s}"
        print(f"{name:15s} {fmt(hf.get('eager'), 10)} {fmt(hf.get('sdpa'), 10)} | "
              f"{fmt(t['output_tokens_per_s'] if t else None, 11)} {fmt(t['decode_tokens_per_s'] if t else None, 9)} | "
              f"{(f'{ratio:15.1f}x') if ratio else '-':>16s}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"transformers": transformers.__version__, "torch": torch.__version__, "device": dev_name,
                       "dtype": args.dtype, "results": results, "summary": summary}, f, indent=2)


if __name__ == "__main__":
    main()
