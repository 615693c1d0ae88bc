#!/usr/bin/env python3
"""Writes the tokenizer golden data that tests/tokenizer/*.cpp compare against.

  tests/data/smollm2_tokenizer.json
      SmolLM2-135M-Instruct (GGUF) token ids for >= 50 strings from transformers' GGUF tokenizer
      ("ids"; encode() with its defaults, which add no BOS for this model), the ids of SmolLM2's
      original pipeline Digits(individual) + ByteLevel on the same vocabulary ("ids_original",
      what GGUF pre='smollm' means, as in llama.cpp), decode(ids), and apply_chat_template texts.
  tests/data/tokenizer/pretokenize.json
      Pieces from Hugging Face tokenizers' pre-tokenizers (GPT-2, Llama-3, Qwen2 regexes through
      Oniguruma; Digits; Digits + GPT-2) for hand-picked and random strings.
  tests/data/tokenizer/spm_tiny.model.json, spm_tiny_legacy.tokenizer.json, spm_tiny_metaspace.tokenizer.json,
  tests/data/tokenizer/spm_tiny_goldens.json
      A tiny SentencePiece BPE model (trained here, byte_fallback, Llama-2 options), its pieces /
      scores / types (what a GGUF "llama" tokenizer holds), its tokenizer.json conversions by
      transformers' LlamaConverter (legacy Prepend+Replace, and Metaspace prepend_scheme=first),
      and ids from sentencepiece and from Hugging Face tokenizers for ~25 strings.
  tests/data/tokenizer/bpe_tiny_llama3.tokenizer.json, bpe_tiny_llama3_goldens.json
      A tiny byte-level BPE with the Llama-3 tokenizer.json configuration, and its ids.
  tests/data/tokenizer/bpe_tiny_qwen2.tokenizer.json, bpe_tiny_qwen2_goldens.json
      The same with the Qwen2 configuration (NFC normalizer, Qwen2 regex).
  tests/data/tokenizer/nfc.json
      unicodedata.normalize("NFC", s) for hand-picked and random strings of combining marks,
      precomposed letters, Hangul jamo, singletons and composition exclusions.
  tests/data/tokenizer/chat_templates.json
      The published Jinja chat templates of ChatML, Llama-2-chat, Llama-3-Instruct, InternLM2-chat
      and SmolLM2 rendered by transformers' own Jinja renderer for several conversations.

Usage: python3 tools/make_tokenizer_goldens.py [--model PATH.gguf]
"""
import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

import gguf
import sentencepiece as spm
import tokenizers
import transformers
from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import BPE
from tokenizers.trainers import BpeTrainer
from transformers import AutoTokenizer

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"

GPT2_RE = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
             r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
            r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def versions():
    return {
        "python": sys.version.split()[0],
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "gguf": getattr(gguf, "__version__", None) or _dist_version("gguf"),
        "sentencepiece": spm.__version__,
    }


def _dist_version(name):
    from importlib.metadata import version
    return version(name)


def long_paragraph():
    sentences = [
        "Tokenizers split text into pieces that a language model can read.",
        "Byte-level BPE never fails: every byte has a token of its own.",
        "In 2024, models with 135M parameters ran at 1,234.5 tokens/s on a laptop!",
        "Don't forget: it's the vocabulary's merges that decide the result, isn't it?",
        "Ünïcödé text, naïve café façades, and Ελληνικά appear too.",
        "这是一个用于测试的长段落，包含中文标点。",
        "Emoji like 🙂 and 👩‍💻 take four bytes each, or more.",
        "    Indented lines\tand tabs\t\tmatter for code.",
    ]
    out = []
    i = 0
    while sum(len(s) + 1 for s in out) < 3000:
        out.append(sentences[i % len(sentences)])
        i += 1
    return " ".join(out)


SMOLLM_CASES = [
    "",
    "Hello world",
    "Hello, world! How are you today?",
    "The quick brown fox jumps over the lazy dog.",
    "请介绍一下你自己。",
    "你好，世界！今天天气很好。",
    "日本語のテキストも正しく扱えますか？カタカナとひらがな。",
    "한국어 문장도 있습니다.",
    "Emoji: 😀😃😄 👍🏽 🇺🇸",
    "Family: 👨‍👩‍👧‍👦 and technologist 👩‍💻 and rainbow flag 🏳️‍🌈",
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "#include <vector>\nint main() {\n\tstd::vector<int> v{1, 2, 3};\n\tfor (auto x : v) {\n\t\tprintf(\"%d\\n\", x);\n\t}\n}\n",
    "a  b   c    d",
    "line one\n\nline two\n\n\n\nline three",
    "trailing spaces   ",
    "   leading spaces",
    "\n\n\nleading newlines",
    "tabs\tand\t\ttabs",
    "\r\nWindows\r\nline endings\r\n",
    "3.14159 2.71828 1,000,000 -42 +7 1e-9 0x1F",
    "12345678901234567890",
    "Version 1.2.3-beta+build.45",
    "!!! ??? ... --- *** ### @@@ $$$ %%% ^^^ &&&",
    "Wow!!!?!... (really) [yes] {no} <maybe>",
    "it's don't I'm you're we've they'll she'd",
    "IT'S DON'T I'M YOU'RE WE'VE THEY'LL SHE'D",
    "It'S dOn'T i'M yOu'Re",
    "'s 't 're 've 'm 'll 'd",
    "rock 'n' roll 'til dawn",
    "https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct?x=1&y=2#top",
    "mail me at someone@example.com or visit www.example.org/path/to/page.html",
    "<|im_start|>user\nhi<|im_end|>\n",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "text<|endoftext|>more text",
    "<|im_start|><|im_end|><|im_start|>",
    "<|im_start",
    "<repo_name>turbine<file_sep>main.cpp",
    "\u0301\u0301 lone combining marks \u0308",
    "e\u0301 versus é",
    "مرحبا بالعالم، كيف حالك؟",
    "नमस्ते दुनिया, आप कैसे हैं?",
    "Привет, мир! Как дела?",
    "Ελληνικά γράμματα: αβγδε",
    "עברית מימין לשמאל",
    "ไทย ภาษาไทย",
    "Zero\u200bwidth\u200bspace and non\u00a0breaking\u00a0space",
    "ideographic\u3000space and em\u2003space",
    "Mixed 中文 and English words 混合",
    "ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３",
    "½ ¼ ² ³ Ⅻ ٣٤٥ ४५६",
    "    ",
    "\n",
    " ",
    "\t\t\t",
    "a",
    "~!@#$%^&*()_+`-=[]\\{}|;':\",./<>?",
    "snake_case camelCase PascalCase kConstant SCREAMING_CASE",
    "x  1 and y\n\n2 and \t\t3 and 12  34",
    long_paragraph(),
]

CHAT_CASES = [
    ([{"role": "user", "content": "Hello!"}], True),
    ([{"role": "user", "content": "Hello!"}], False),
    ([{"role": "system", "content": "You are a pirate."}, {"role": "user", "content": "Ahoy?"}], True),
    ([{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4"},
      {"role": "user", "content": "And 3+3?"}], True),
    ([{"role": "user", "content": "请介绍一下你自己。"}], True),
    ([{"role": "user", "content": "  spaces around  \n"}], True),
]


def smollm2(model: Path):
    tok = AutoTokenizer.from_pretrained(str(model.parent), gguf_file=model.name)
    # SmolLM2's own tokenizer.json pipeline on the same vocabulary: GGUF pre='smollm'.
    original = Tokenizer.from_str(tok.backend_tokenizer.to_str())
    original.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True),
         pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    cases = []
    for text in SMOLLM_CASES:
        ids = tok.encode(text)
        assert ids == tok.encode(text, add_special_tokens=False), "default encode adds special tokens?"
        cases.append({
            "text": text,
            "ids": ids,
            "ids_original": original.encode(text).ids,
            "decoded": tok.decode(ids),
            "decoded_skip_special": tok.decode(ids, skip_special_tokens=True),
        })
    chats = []
    for msgs, gen in CHAT_CASES:
        text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen)
        chats.append({"messages": msgs, "add_generation_prompt": gen, "text": text, "ids": tok.encode(text)})
    differ = sum(c["ids"] != c["ids_original"] for c in cases)
    out = {
        "versions": versions(),
        "model": model.name,
        "note": ("ids: transformers' GGUF tokenizer (ByteLevel/GPT-2 regex only, encode() defaults). "
                 "ids_original: Digits(individual)+ByteLevel, SmolLM2's own pipeline and llama.cpp's "
                 f"pre='smollm'; they differ on {differ} cases (whitespace before digits)."),
        "cases": cases,
        "chat": chats,
    }
    write_json(DATA / "smollm2_tokenizer.json", out)


def random_strings(rng, n):
    pool = (list("abcXYZ ") * 3 + list("0123456789") + [" ", " ", "  ", "\n", "\r\n", "\t", "'", "'s", "'S", "'ll",
            "'LL", "'ve", "'re", "'m", "'d", "'t", "'ſ", "!", "?", ".", ",", "-", "_", "(", ")", "\"", "\u00a0",
            "\u2003", "\u3000", "\u2028", "\u0085", "\x0b", "\x0c", "\x1c", "\u200b", "\ufeff", "é", "ß", "ſ",
            "中", "文", "。", "，", "日本", "カ", "😀", "👩‍💻", "🇺🇸", "\u0301", "\u0308", "²", "½", "Ⅻ", "٣", "४",
            "Ж", "ж", "α", "ع", "न", "ि", "$", "€", "<", ">", "|", "@", "#"])
    return ["".join(rng.choice(pool) for _ in range(rng.randint(1, 24))) for _ in range(n)]


def pretokenize_goldens():
    rng = random.Random(1234)
    texts = SMOLLM_CASES[:-1] + [
        "a  \n\n  b", "?!\n\nabc", "x \u3000\u3000y", "a\u2028\u2028b", "  \r\n x", "hello\n\n\n", "١٢٣٤٥٦٧",
        "it'ſ", "'ſ 'S 'Ll", "\t\thello", "( hello", "1 2  3   4", " \n \n ", "a\x85b", "...\r\n\r\nx",
    ] + random_strings(rng, 300)
    splitters = {
        "gpt2": pre_tokenizers.Split(Regex(GPT2_RE), behavior="isolated"),
        "llama3": pre_tokenizers.Split(Regex(LLAMA3_RE), behavior="isolated"),
        "qwen2": pre_tokenizers.Split(Regex(QWEN2_RE), behavior="isolated"),
        "digits": pre_tokenizers.Digits(individual_digits=True),
        "digits+gpt2": pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                pre_tokenizers.Split(Regex(GPT2_RE), behavior="isolated")]),
    }
    cases = []
    for t in texts:
        case = {"text": t}
        for name, s in splitters.items():
            case[name] = [p for p, _ in s.pre_tokenize_str(t)]
        cases.append(case)
    write_json(DATA / "tokenizer" / "pretokenize.json", {"versions": versions(), "cases": cases})


SPM_CORPUS = [
    "Hello world, this is a small corpus for a tiny SentencePiece tokenizer.",
    "The quick brown fox jumps over the lazy dog. The dog sleeps; the fox runs.",
    "Tokenizers split text into pieces, and pieces into ids. Numbers like 2024 and 3.14 split into digits.",
    "你好，世界。我们来训练一个小模型。今天天气很好。",
    "Llama models use byte fallback for characters they have never seen.",
    "   Indentation and  double  spaces   are kept as they are.",
    "InternLM2 and Llama-2 share this kind of tokenizer.",
]

SPM_CASES = [
    "", "Hello world", " Hello world", "Hello  world  ", "  leading", "The quick brown fox.",
    "你好，世界。", "unseen ☃ snowman and 🙂 emoji", "numbers 12345 and 3.14", "tabs\tand\nnewlines\n",
    "<s>Hello</s>", "text <s> in the middle", "<unk> literal", "Ünïcödé ñ", "a", " ", "▁ literal metaspace",
    "InternLM2 tokenizer", "mixed 中文 English", "repeated aaaaaaaaaaaaaaaaaaaaaaaa", "fox" * 40,
    "\u0301 lone mark", "x" + " " * 20 + "y",
]


def convert_spm(sp, legacy):
    """transformers' LlamaConverter (v4 logic, which v5 still documents) without its protobuf
    dependency: BPE vocab + merges ordered by piece score, byte_fallback, fuse_unk; the legacy
    normalizer Prepend+Replace or, for legacy=False, Metaspace(prepend_scheme="first")."""
    from transformers.tokenization_utils_base import generate_merges
    vocab_scores = [(sp.id_to_piece(i), 0.0 if i < 3 else sp.get_score(i)) for i in range(sp.get_piece_size())]
    vocab = {piece: i for i, (piece, _) in enumerate(vocab_scores)}
    merges = generate_merges(vocab, vocab_scores)
    t = Tokenizer(BPE(vocab, merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True, dropout=None))
    t.add_special_tokens([tokenizers.AddedToken(p, normalized=False, special=True) for p in ("<unk>", "<s>", "</s>")])
    if legacy:
        t.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    else:
        t.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=False)
    t.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
                                   decoders.Strip(content=" ", left=1)])
    t.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return t


def spm_goldens():
    outdir = DATA / "tokenizer"
    with tempfile.TemporaryDirectory() as tmp:
        prefix = Path(tmp) / "spm_tiny"
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(SPM_CORPUS * 20), model_prefix=str(prefix), vocab_size=400, model_type="bpe",
            byte_fallback=True, character_coverage=0.98, normalization_rule_name="identity", add_dummy_prefix=True,
            remove_extra_whitespaces=False, split_digits=True, allow_whitespace_only_pieces=True, minloglevel=2)
        sp = spm.SentencePieceProcessor(model_file=str(prefix) + ".model")
    pieces = {
        "tokens": [sp.id_to_piece(i) for i in range(sp.get_piece_size())],
        "scores": [sp.get_score(i) for i in range(sp.get_piece_size())],
        "token_types": [_sp_type(sp, i) for i in range(sp.get_piece_size())],
        "bos": sp.bos_id(), "eos": sp.eos_id(), "unk": sp.unk_id(),
    }
    variants = {}
    outdir.mkdir(parents=True, exist_ok=True)
    for name, legacy in (("legacy", True), ("metaspace", False)):
        t = convert_spm(sp, legacy)
        t.save(str(outdir / f"spm_tiny_{name}.tokenizer.json"))
        variants[name] = Tokenizer.from_file(str(outdir / f"spm_tiny_{name}.tokenizer.json"))
    cases = []
    for text in SPM_CASES:
        case = {"text": text, "sentencepiece_ids": sp.encode(text)}
        for name, t in variants.items():
            enc = t.encode(text)
            case[f"{name}_ids"] = enc.ids
            case[f"{name}_decoded"] = t.decode(enc.ids, skip_special_tokens=False)
        cases.append(case)
    write_json(outdir / "spm_tiny.model.json", {"versions": versions(), **pieces})
    write_json(outdir / "spm_tiny_goldens.json", {"versions": versions(), "cases": cases})


def _sp_type(sp, i):
    # sentencepiece's ModelProto types, which GGUF's tokenizer.ggml.token_type copies.
    if sp.is_unknown(i):
        return 2
    if sp.is_control(i):
        return 3
    if sp.is_unused(i):
        return 5
    if sp.is_byte(i):
        return 6
    return 1


LLAMA3_CASES = [
    "Hello world", "it's IT'S they'll", "numbers 1234567 and 3.14", "   spaces\n\n\n  and lines  ",
    "你好，世界。", "emoji 😀 👩‍💻", "<|begin_of_text|>hi<|eot_id|>", "tabs\tand\r\nCRLF", "x²³ ٣٤٥", "",
    "The quick brown fox jumps over the lazy dog.", "code(x) { return y; }", "ſ'ſ it'ſ",
]


def llama3_tiny():
    t = Tokenizer(BPE(ignore_merges=True))
    t.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_RE), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    t.decoder = decoders.ByteLevel()
    trainer = BpeTrainer(vocab_size=700, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                         special_tokens=["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"], show_progress=False)
    t.train_from_iterator(SPM_CORPUS * 10 + SMOLLM_CASES[:30], trainer=trainer)
    t.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                      special_tokens=[("<|begin_of_text|>", t.token_to_id("<|begin_of_text|>"))])])
    out = DATA / "tokenizer" / "bpe_tiny_llama3.tokenizer.json"
    t.save(str(out))
    t = Tokenizer.from_file(str(out))
    cases = [{"text": s, "ids": t.encode(s).ids, "decoded": t.decode(t.encode(s).ids, skip_special_tokens=False)}
             for s in LLAMA3_CASES]
    write_json(DATA / "tokenizer" / "bpe_tiny_llama3_goldens.json", {"versions": versions(), "cases": cases})


QWEN2_CASES = LLAMA3_CASES + [
    "cafe\u0301 vs café", "Å vs \u212b vs A\u030a", "\u1100\u1161\u11a8 한국어", "o\u0308\u0304 \u01eb\u0304",
    "numbers 1234567", "\u0958 excluded", "<|im_start|>user\nhi<|im_end|>",
]


def qwen2_tiny():
    t = Tokenizer(BPE())
    t.normalizer = normalizers.NFC()
    t.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_RE), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])
    t.decoder = decoders.ByteLevel()
    trainer = BpeTrainer(vocab_size=600, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                         special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"], show_progress=False)
    t.train_from_iterator(SPM_CORPUS * 10 + SMOLLM_CASES[:30] + ["café naïve Åström 한국어"] * 5, trainer=trainer)
    out = DATA / "tokenizer" / "bpe_tiny_qwen2.tokenizer.json"
    t.save(str(out))
    t = Tokenizer.from_file(str(out))
    cases = [{"text": s, "ids": t.encode(s).ids, "decoded": t.decode(t.encode(s).ids, skip_special_tokens=False)}
             for s in QWEN2_CASES]
    write_json(DATA / "tokenizer" / "bpe_tiny_qwen2_goldens.json", {"versions": versions(), "cases": cases})


def nfc_goldens():
    import unicodedata
    rng = random.Random(99)
    pool = ["a", "e", "o", "u", "A", "O", "s", "d", "k", " ", "\u0300", "\u0301", "\u0302", "\u0303", "\u0308",
            "\u0323", "\u0327", "\u031b", "\u0345", "\u05b0", "\u0591", "\u093c", "\u0334", "\u0f71", "\u0f72",
            "\u00e9", "\u00c5", "\u212b", "\u2126", "\u1e0b", "\u1e63", "\u01ea", "\u0958", "\u0915",
            "\u1100", "\u1161", "\u11a8", "\uac00", "\ud55c", "\u0b47", "\u0b3e", "\u0b57", "\u3099", "\u304b",
            "\uf900", "\u0344", "\u0f73", "\u1fbf", "\u2000", "\u00a8", "中", "😀", "\U0001d15e", "\U000110ba"]
    texts = ["", "plain ascii", "caf\u00e9", "cafe\u0301", "A\u030a", "\u212b", "a\u0323\u0302", "a\u0302\u0323",
             "\u1100\u1161\u11a8", "\ud55c\u11a8", "\u0958", "\u0915\u093c", "\u0344", "s\u0323\u0307",
             "\u1e0b\u0323", "q\u0307\u0323", "\u0b47\u0b3e", "\u304b\u3099", "\uf900", "\u0301start"]
    texts += ["".join(rng.choice(pool) for _ in range(rng.randint(1, 16))) for _ in range(400)]
    cases = [{"text": t, "nfc": unicodedata.normalize("NFC", t)} for t in texts]
    write_json(DATA / "tokenizer" / "nfc.json", {"versions": versions(), "unicode": unicodedata.unidata_version,
                                                "cases": cases})



# The chat templates as published in the models' tokenizer_config.json.
PUBLISHED_TEMPLATES = {
    "chatml": ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
               "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
               "", ""),
    # meta-llama/Llama-2-7b-chat-hf
    "llama2": ("{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = "
               "messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}"
               "{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
               "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
               "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + "
               "'\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}"
               "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
               "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}",
               "<s>", "</s>"),
    # meta-llama/Meta-Llama-3-8B-Instruct
    "llama3": ("{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
               "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + "
               "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}"
               "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}",
               "<|begin_of_text|>", "<|end_of_text|>"),
    # internlm/internlm2-chat-7b
    "internlm2": ("{{ bos_token }}{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + "
                  "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
                  "{{ '<|im_start|>assistant\n' }}{% endif %}",
                  "<s>", "</s>"),
}

TEMPLATE_CONVERSATIONS = [
    [{"role": "user", "content": "Hello!"}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi there"}],
    [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4"},
     {"role": "user", "content": "And 3+3?"}],
    [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "  padded \n"},
     {"role": "assistant", "content": "\n ok  "}, {"role": "user", "content": "请介绍一下你自己。"}],
]


def chat_templates(model: Path):
    from transformers.utils.chat_template_utils import render_jinja_template
    gg = gguf.GGUFReader(str(model))
    templates = dict(PUBLISHED_TEMPLATES)
    templates["smollm"] = (gg.fields["tokenizer.chat_template"].contents(), "<|im_start|>", "<|im_end|>")
    cases = []
    for name, (source, bos, eos) in templates.items():
        for msgs in TEMPLATE_CONVERSATIONS:
            for gen in (True, False):
                rendered, _ = render_jinja_template(conversations=[msgs], chat_template=source,
                                                    add_generation_prompt=gen, bos_token=bos, eos_token=eos)
                cases.append({"template": name, "messages": msgs, "add_generation_prompt": gen, "text": rendered[0]})
    out = {"versions": versions(),
           "templates": {k: {"source": v[0], "bos_token": v[1], "eos_token": v[2]} for k, v in templates.items()},
           "cases": cases}
    write_json(DATA / "tokenizer" / "chat_templates.json", out)



def write_json(path: Path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size} bytes)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=ROOT / ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    args = ap.parse_args()
    smollm2(args.model)
    pretokenize_goldens()
    spm_goldens()
    llama3_tiny()
    qwen2_tiny()
    nfc_goldens()
    chat_templates(args.model)


if __name__ == "__main__":
    main()
