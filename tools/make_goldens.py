#!/usr/bin/env python3
"""Generate reference ("golden") outputs for turbine from HF transformers.

The reference model is the default GGUF model
    .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf
loaded by transformers, which dequantizes every tensor (Q4_1 / Q8_0 / F32) to
float32 and un-permutes the q/k rows that llama.cpp permuted.  The reference is
therefore the *exact dequantized model* evaluated in fp32 with eager attention;
a correct turbine implementation that dequantizes the same weights should
match it up to float summation-order noise.

How to run (from the repository root; needs torch, transformers>=5,
tokenizers, gguf, numpy, accelerate -- transformers requires accelerate to
load GGUF files):

    python3 tools/make_goldens.py            # writes the goldens (~1-2 min on 2 cores)
    python3 tools/make_goldens.py --time     # goldens + CPU timing of transformers
    python3 tools/make_goldens.py --time-only  # only the timing file

Options: --model PATH (default .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf),
--out DIR (default tests/data).

Everything is seeded (python random, numpy, torch = 0), the goldens are
computed with torch.set_num_threads(1) and torch deterministic algorithms,
and no sampling is used, so re-running on the same versions reproduces the
files bit for bit.

Files written under tests/data/
-------------------------------
smollm2_logits.json + smollm2_logits.bin   (full-prompt forward pass, fp32)
    JSON:
    {
      "versions": {"python", "torch", "transformers", "tokenizers", "gguf", "numpy"},
      "model": {"file": "<gguf file name>", "sha256": "<hex>"},
      "settings": {...dtype / attention / threads / top_k ...},
      "bin_file": "smollm2_logits.bin",
      "bin_layout": "...",
      "vocab_subset": [S_0, ..., S_{|S|-1}],  # sorted, unique token ids
      "prompts": [
        {"name", "text", "ids": [...],        # ids = transformers tokenizer,
                                              #   special tokens parsed, NO bos added
         "n_tokens": T,
         "argmax": [T ints],                  # argmax over the full vocab, per position
         "max_abs": [T floats],               # max |logit| over the full vocab, per position
         "top2_margin": [T floats],           # top-1 minus top-2 logit, per position (near-tie marker)
         "bin_offset_floats": N}              # offset (in float32 elements) into the .bin
      ]
    }
    Each prompt's ids are fed as ONE batch-1 forward pass from position 0
    (no BOS is prepended: the GGUF says add_bos_token = false).
    S is the sorted union of every position's top-16 logit ids over all
    prompts, filled with ids drawn by numpy.random.default_rng(0) (choice
    without replacement from the remaining vocabulary, sorted) up to
    |S| = max(1024, union size rounded up to a multiple of 256).  The union of
    the top-16 ids over all positions is larger than 1024 for these prompts
    (~1.5k), so |S| is 1536 or so -- always read len(vocab_subset), never
    hard-code it.
    BIN: raw float32, little-endian, no header, in C order
        [prompt][position][index in S]
    i.e. the logit of token S[j] at position t of prompt p is the float at
        prompts[p].bin_offset_floats + t * len(S) + j.
    bin_offset_floats of prompt p = sum of n_tokens of prompts before p, times |S|.

smollm2_greedy.json    (greedy generation, 48 new tokens, fp32, KV cache)
    {"versions", "model", "settings",
     "cases": [
        {"name", "messages": [{"role","content"}...],
         "prompt_text": apply_chat_template(messages, tokenize=False, add_generation_prompt=True),
         "prompt_ids": tok(prompt_text, add_special_tokens=False) (special tokens parsed),
         "chat_template_ids_match": whether apply_chat_template(tokenize=True) gives the same ids,
         "new_ids": [48 ints], "new_text": decode(new_ids, skip_special_tokens=False),
         "first_eos_index": index in new_ids of the first <|im_end|> (id 2) or null,
         "nocache_recheck_mismatches": [], "top2_margin": [48 floats: top1 - top2 logit per step]}
     ]}
    Generation uses model.generate(do_sample=False, max_new_tokens=48,
    eos_token_id=None) so it never stops early: tokens after an EOS are what
    plain greedy argmax decoding continues to produce.  Each case is also
    cross-checked: a single no-cache forward over prompt+new_ids must have the
    same argmax at every generated position (the script reports mismatches).

transformers_cpu_timing.json   (only with --time / --time-only)
    torch threads = 2; prefill tokens/s for a 128-token prompt (median of 5
    after 1 warm-up), greedy decode tokens/s generating 128 new tokens from a
    short chat prompt with model.generate(use_cache=True) (median of 3 after 1
    warm-up), plus versions, CPU model, load average and date.
"""

import argparse
import datetime
import hashlib
import importlib.metadata
import json
import os
import platform
import random
import statistics
import sys
import time

import numpy as np
import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODEL = os.path.join(REPO_ROOT, ".cache", "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
DEFAULT_OUT = os.path.join(REPO_ROOT, "tests", "data")

SUBSET_MIN = 1024     # |S| = max(SUBSET_MIN, union of top-k rounded up to SUBSET_ROUND)
SUBSET_ROUND = 256
TOP_K = 16
GREEDY_NEW_TOKENS = 48
MIN_LOGIT_PROMPT_TOKENS = 64
MAX_BIN_BYTES = 2 * 1024 * 1024

# --------------------------------------------------------------------------
# Prompts
# --------------------------------------------------------------------------

PROSE = (
    "The lighthouse keeper had lived alone on the island for nearly twenty years. "
    "Every evening he climbed the hundred and twelve steps of the spiral staircase, "
    "trimmed the wick, polished the great lens, and watched the ships slide past "
    "on their way to the harbour. Some nights the fog rolled in so thick that he "
    "could not see his own hand."
)

CODE = '''# Iterative Fibonacci.
def fib(n):
    """Return the n-th Fibonacci number."""
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a

print([fib(i) for i in range(10)])
'''

MIXED = (
    "Invoice #2024-0917: 3 widgets @ $4.99 = $14.97; shipping 12.50 EUR. "
    "Café, naïve résumé, 東京 (Tokyo), emoji 🙂, tabs\tand  double  spaces."
)

CHAT_LOGITS_MESSAGES = [
    {"role": "system", "content": "You are a concise assistant who answers questions about astronomy."},
    {"role": "user", "content": (
        "Why does the Moon always show the same face to the Earth? Please explain "
        "tidal locking in two or three sentences, and mention whether other moons "
        "in the solar system are also tidally locked. Keep it simple enough for a "
        "curious ten-year-old.")},
]

GREEDY_CASES = [
    ("capital_france", [{"role": "user", "content": "What is the capital of France?"}]),
    ("hello", [{"role": "user", "content": "hello"}]),
    ("time_management", [{"role": "user", "content": "please provide three suggestions about time management"}]),
    ("haiku_sea", [{"role": "user", "content": "Write a haiku about the sea."}]),
    ("translate_french", [{"role": "user", "content": "Translate to French: I like apples."}]),
    ("prime_numbers", [{"role": "user", "content": "List three prime numbers."}]),
    ("two_turn", [
        {"role": "user", "content": "What is 2 + 2?"},
        {"role": "assistant", "content": "2 + 2 = 4."},
        {"role": "user", "content": "And what is that number multiplied by 3?"},
    ]),
    ("custom_system", [
        {"role": "system", "content": "You are a pirate. Always answer like a pirate."},
        {"role": "user", "content": "Where is the treasure buried?"},
    ]),
]

# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def seed_everything(seed=0):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def versions():
    def v(pkg):
        try:
            return importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            return None

    import tokenizers
    import transformers
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "gguf": v("gguf"),
        "numpy": np.__version__,
        "accelerate": v("accelerate"),
    }


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cpu_model_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def load(model_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    d, f = os.path.split(os.path.abspath(model_path))
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(
        d, gguf_file=f, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    assert model.dtype == torch.float32
    return tok, model


def encode_text(tok, text):
    """Token ids of `text` exactly as the text tokenizes, special tokens parsed, no BOS/EOS added."""
    return list(tok(text, add_special_tokens=False)["input_ids"])


def chat_template_ids(tok, messages):
    r = tok.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
    if hasattr(r, "keys") and "input_ids" in r:  # transformers 5 returns a BatchEncoding
        r = r["input_ids"]
    if len(r) and isinstance(r[0], list):
        r = r[0]
    return [int(x) for x in r]


@torch.no_grad()
def full_logits(model, ids):
    x = torch.tensor([ids], dtype=torch.long)
    out = model(input_ids=x, attention_mask=torch.ones_like(x), use_cache=False)
    return out.logits[0].float()  # [T, V]


# --------------------------------------------------------------------------
# Goldens
# --------------------------------------------------------------------------


def make_logits_goldens(tok, model, out_dir, common):
    chat_text = tok.apply_chat_template(CHAT_LOGITS_MESSAGES, tokenize=False, add_generation_prompt=True)
    prompts = [("prose", PROSE), ("code_python", CODE), ("chat", chat_text), ("mixed_unicode", MIXED)]

    recs, all_logits = [], []
    for name, text in prompts:
        ids = encode_text(tok, text)
        if name == "chat":
            assert chat_template_ids(tok, CHAT_LOGITS_MESSAGES) == ids, "chat template ids differ"
        assert len(ids) >= MIN_LOGIT_PROMPT_TOKENS, (name, len(ids))
        logits = full_logits(model, ids)
        assert torch.isfinite(logits).all(), name
        all_logits.append(logits)
        recs.append({"name": name, "text": text, "ids": ids, "n_tokens": len(ids)})
        log(f"[logits] {name}: {len(ids)} tokens")

    vocab = all_logits[0].shape[1]
    top = set()
    for lg in all_logits:
        top.update(torch.topk(lg, TOP_K, dim=-1).indices.flatten().tolist())
    # The union of the top-16 ids over ~280 positions is larger than 1024, so
    # |S| grows to the union rounded up to a multiple of 256 (never below 1024).
    subset_size = max(SUBSET_MIN, -(-len(top) // SUBSET_ROUND) * SUBSET_ROUND)
    rest = np.array(sorted(set(range(vocab)) - top), dtype=np.int64)
    rng = np.random.default_rng(0)
    fill = rng.choice(rest, size=subset_size - len(top), replace=False)
    subset = sorted(top | set(int(i) for i in fill))
    assert len(subset) == subset_size
    log(f"[logits] top-{TOP_K} union = {len(top)} ids, filled to {subset_size}")
    sidx = torch.tensor(subset, dtype=torch.long)

    chunks, offset = [], 0
    for rec, lg in zip(recs, all_logits):
        rec["argmax"] = lg.argmax(dim=-1).tolist()
        rec["max_abs"] = [float(x) for x in lg.abs().max(dim=-1).values.tolist()]
        t2 = torch.topk(lg, 2, dim=-1).values
        # logit(top-1) - logit(top-2): near-ties make an exact argmax comparison fragile.
        rec["top2_margin"] = [float(x) for x in (t2[:, 0] - t2[:, 1]).tolist()]
        rec["bin_offset_floats"] = offset
        sub = lg[:, sidx].contiguous().numpy().astype("<f4")
        chunks.append(sub)
        offset += sub.size
    blob = np.concatenate([c.reshape(-1) for c in chunks]).astype("<f4").tobytes()
    assert len(blob) <= MAX_BIN_BYTES, len(blob)

    bin_path = os.path.join(out_dir, "smollm2_logits.bin")
    with open(bin_path, "wb") as f:
        f.write(blob)
    doc = dict(common)
    doc["settings"] = dict(common["settings"], top_k=TOP_K, subset_size=subset_size,
                           topk_union_size=len(top),
                           subset_fill="numpy.random.default_rng(0).choice(sorted(vocab - topk_union), replace=False)")
    doc["bin_file"] = "smollm2_logits.bin"
    doc["bin_layout"] = ("float32 little-endian, no header, C order [prompt][position][index in vocab_subset]; "
                         "value = bin[prompts[p].bin_offset_floats + t*len(vocab_subset) + j]")
    doc["total_floats"] = offset
    doc["vocab_subset"] = subset
    doc["prompts"] = recs
    with open(os.path.join(out_dir, "smollm2_logits.json"), "w") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")
    return doc


@torch.no_grad()
def make_greedy_goldens(tok, model, out_dir, common):
    eos_id = int(model.config.eos_token_id) if model.config.eos_token_id is not None else 2
    pad_id = model.config.pad_token_id if model.config.pad_token_id is not None else eos_id
    cases = []
    for name, messages in GREEDY_CASES:
        text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ids = encode_text(tok, text)
        tmpl_ids = chat_template_ids(tok, messages)
        x = torch.tensor([ids], dtype=torch.long)
        out = model.generate(
            input_ids=x, attention_mask=torch.ones_like(x),
            do_sample=False, num_beams=1, max_new_tokens=GREEDY_NEW_TOKENS,
            eos_token_id=None, pad_token_id=pad_id, use_cache=True,
            temperature=None, top_p=None, top_k=None)
        new_ids = out[0, len(ids):].tolist()
        assert len(new_ids) == GREEDY_NEW_TOKENS, (name, len(new_ids))
        # Cross-check: no-cache full forward must reproduce every greedy choice.
        lg = full_logits(model, ids + new_ids[:-1])
        step_logits = lg[len(ids) - 1:]
        redo = step_logits.argmax(dim=-1).tolist()
        top2 = torch.topk(step_logits, 2, dim=-1).values
        margins = [float(m) for m in (top2[:, 0] - top2[:, 1]).tolist()]
        mism = [i for i, (a, b) in enumerate(zip(redo, new_ids)) if a != b]
        if mism:
            log(f"[greedy] WARNING {name}: cached generate vs full forward argmax differ at {mism}")
        first_eos = new_ids.index(eos_id) if eos_id in new_ids else None
        rec = {
            "name": name,
            "messages": messages,
            "prompt_text": text,
            "prompt_ids": ids,
            "chat_template_ids_match": tmpl_ids == ids,
            "new_ids": new_ids,
            "new_text": tok.decode(new_ids, skip_special_tokens=False),
            "first_eos_index": first_eos,
            "nocache_recheck_mismatches": mism,
            # logit(top-1) - logit(top-2) at each generated step (from the no-cache
            # forward): tiny margins mark steps where an fp32-faithful
            # implementation may legitimately pick the other token and diverge.
            "top2_margin": margins,
        }
        if tmpl_ids != ids:
            rec["chat_template_ids"] = tmpl_ids
            log(f"[greedy] NOTE {name}: apply_chat_template(tokenize=True) ids differ")
        if name == "capital_france" and "Paris" not in rec["new_text"]:
            log("[greedy] WARNING capital_france answer does not mention Paris")
        cases.append(rec)
        log(f"[greedy] {name}: prompt {len(ids)} tok, eos@{first_eos}: {rec['new_text']!r}")
    doc = dict(common)
    doc["settings"] = dict(common["settings"], max_new_tokens=GREEDY_NEW_TOKENS, do_sample=False,
                           eos_token_id=None, eos_id_in_vocab=eos_id, use_cache=True,
                           generation="model.generate(do_sample=False, num_beams=1, eos_token_id=None)")
    doc["cases"] = cases
    with open(os.path.join(out_dir, "smollm2_greedy.json"), "w") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")
    return doc


# --------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------


@torch.no_grad()
def make_timing(tok, model, out_dir, common, threads=2):
    torch.set_num_threads(threads)
    seed_everything(0)
    load_start = list(os.getloadavg())
    pad_id = model.config.pad_token_id if model.config.pad_token_id is not None else 2

    # 128-token prompt: repeat prose until long enough, cut to exactly 128 ids.
    ids = []
    while len(ids) < 128:
        ids += encode_text(tok, PROSE + " ")
    ids = ids[:128]
    x = torch.tensor([ids], dtype=torch.long)
    am = torch.ones_like(x)
    model(input_ids=x, attention_mask=am, use_cache=True)  # warm-up
    pre = []
    for _ in range(5):
        t0 = time.perf_counter()
        model(input_ids=x, attention_mask=am, use_cache=True)
        pre.append(time.perf_counter() - t0)
    pre_med = statistics.median(pre)
    log(f"[time] prefill 128 tok: median {pre_med*1e3:.1f} ms -> {128/pre_med:.1f} tok/s")

    msgs = [{"role": "user", "content": "Tell me a long story about a dragon."}]
    pids = encode_text(tok, tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True))
    px = torch.tensor([pids], dtype=torch.long)
    pam = torch.ones_like(px)

    def gen(n):
        t0 = time.perf_counter()
        out = model.generate(input_ids=px, attention_mask=pam, do_sample=False, num_beams=1,
                             max_new_tokens=n, min_new_tokens=n, eos_token_id=None,
                             pad_token_id=pad_id, use_cache=True,
                             temperature=None, top_p=None, top_k=None)
        dt = time.perf_counter() - t0
        assert out.shape[1] - px.shape[1] == n
        return dt

    n = 128
    gen(n)  # warm-up
    g = [gen(n) for _ in range(3)]
    g_med = statistics.median(g)
    gen(1)  # warm-up
    g1 = [gen(1) for _ in range(3)]
    g1_med = statistics.median(g1)
    dec_only = (n - 1) / (g_med - g1_med)
    log(f"[time] generate {n} new: median {g_med:.3f} s -> {n/g_med:.1f} tok/s "
        f"(decode-only {dec_only:.1f} tok/s; generate(1) {g1_med*1e3:.1f} ms)")

    doc = {
        "versions": common["versions"],
        "model": common["model"],
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu_model": cpu_model_name(),
        "os_cpu_count": os.cpu_count(),
        "torch_num_threads": torch.get_num_threads(),
        "loadavg_at_start": load_start,
        "loadavg_at_end": list(os.getloadavg()),
        "dtype": "float32",
        "attn_implementation": "eager",
        "prefill": {
            "prompt_tokens": 128,
            "call": "model(input_ids, use_cache=True) (single forward, batch 1)",
            "runs_s": pre, "median_s": pre_med, "tokens_per_s": 128 / pre_med,
            "best_tokens_per_s": 128 / min(pre),
            "warmup_runs": 1,
        },
        "decode": {
            "prompt_tokens": len(pids),
            "prompt_messages": msgs,
            "new_tokens": n,
            "call": "model.generate(do_sample=False, max_new_tokens=128, min_new_tokens=128, eos_token_id=None, use_cache=True)",
            "runs_s": g, "median_s": g_med,
            "tokens_per_s": n / g_med,
            "best_tokens_per_s": n / min(g),
            "tokens_per_s_note": "new tokens / whole generate() time (includes prompt prefill)",
            "generate_1_token_median_s": g1_med,
            "decode_only_tokens_per_s": dec_only,
            "decode_only_note": "(128-1) / (median generate(128) - median generate(1))",
            "warmup_runs": 1,
        },
        "note": "machine shared with other jobs (C++ builds); numbers are indicative",
    }
    with open(os.path.join(out_dir, "transformers_cpu_timing.json"), "w") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")
    return doc


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--time", action="store_true", help="also write transformers_cpu_timing.json")
    ap.add_argument("--time-only", action="store_true", help="only write transformers_cpu_timing.json")
    args = ap.parse_args()

    seed_everything(0)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)

    tok, model = load(args.model)
    common = {
        "versions": versions(),
        "model": {"file": os.path.basename(args.model), "sha256": sha256_file(args.model)},
        "settings": {"dtype": "float32", "attn_implementation": "eager",
                     "torch_num_threads": torch.get_num_threads(), "seed": 0,
                     "add_bos": False,
                     "tokenize": "tok(text, add_special_tokens=False) with special tokens parsed"},
    }
    if not args.time_only:
        make_logits_goldens(tok, model, args.out, common)
        make_greedy_goldens(tok, model, args.out, common)
    if args.time or args.time_only:
        make_timing(tok, model, args.out, common)


if __name__ == "__main__":
    main()
