#!/usr/bin/env python3
"""The reference model's greedy chat reply to one prompt in fp32, fp16 and bf16 (transformers on the
CPU), with the first reply token's margin over the runner-up in each: to tell whether a reply that
changes with turbine's --dtype is the model at that precision or turbine.

  python3 -m pip install torch transformers gguf accelerate
  python3 tools/hf_reply_by_dtype.py [--model .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf]
      [--prompt "What is the capital of France?"] [-n 24]

The GGUF's weights are dequantized to fp32 by transformers (make_goldens.load), then cast to each
dtype (as turbine's GPU backend dequantizes Q4_1 to f16 or bf16 at upload).
"""
import argparse
import copy
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_goldens import DEFAULT_MODEL, chat_template_ids, load  # noqa: E402  (torch imported there)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--prompt", default="What is the capital of France?")
    ap.add_argument("-n", type=int, default=24, help="new tokens")
    a = ap.parse_args()
    if not os.path.isfile(a.model):
        sys.exit(f"hf_reply_by_dtype: no model file {a.model} (tools/fetch_model.sh fetches the default one)")
    import torch
    import transformers

    torch.manual_seed(0)
    tok, base = load(a.model)
    ids = chat_template_ids(tok, [{"role": "user", "content": a.prompt}])
    x = torch.tensor([ids], dtype=torch.long)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}; {len(ids)} prompt tokens")
    for name, dt in (("fp32", torch.float32), ("fp16", torch.float16), ("bf16", torch.bfloat16)):
        m = copy.deepcopy(base).to(dt).eval()  # each dtype cast from the fp32 weights
        with torch.no_grad():
            logits = m(x).logits[0, -1].float()
            top = torch.topk(logits, 2)
            out = m.generate(x, do_sample=False, max_new_tokens=a.n, pad_token_id=tok.eos_token_id)
        first = [tok.decode([int(i)]) for i in top.indices]
        reply = tok.decode(out[0, x.shape[1]:], skip_special_tokens=True).replace("\n", " ")
        print(f"{name}: first token {first[0]!r} {top.values[0]:.4f}, runner-up {first[1]!r} {top.values[1]:.4f}"
              f" (margin {top.values[0] - top.values[1]:.4f}); reply: {reply}")


if __name__ == "__main__":
    main()
