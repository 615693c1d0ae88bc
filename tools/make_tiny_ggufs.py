#!/usr/bin/env python3
"""Converts the tiny Hugging Face models of tests/data/tiny_models/ to GGUF with llama.cpp's own
converter (convert_hf_to_gguf.py and its gguf-py), writing tests/data/tiny_models/<name>/model.gguf.
tests/model/hf_architectures.cpp checks that turbine reads each file to the same logits as
transformers gives for the directory it came from (the directory's golden.json), so the GGUF
conventions (q/k row order, Llama 3's rope_freqs tensor, Qwen2's biases, InternLM2's split wqkv)
are checked against llama.cpp's writer rather than against turbine's idea of it.

Run from the repository root (CPU only, a few seconds after the download):

    python3 tools/make_tiny_ggufs.py [--llama-cpp DIR]

DIR is a llama.cpp source tree (the one vendored in the llama-cpp-python sdist is used by default:
`pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36` into .cache/llama-cpp/).
The committed files were made with llama-cpp-python 0.3.36's vendored llama.cpp, torch 2.15.0+cu132
(CPU), Python 3.11.7.

The tiny models carry no tokenizer, so the converter's vocabulary step is skipped: the files hold
weights and hyperparameters only, which is what turbine::load_weights reads. Mistral is left out:
llama.cpp writes MistralForCausalLM as the `llama` architecture, which has no sliding window, so
its logits after the window would rightly differ from transformers'.
"""
import argparse
import logging
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "tests" / "data" / "tiny_models"
NAMES = ["llama_tied", "llama_untied", "qwen2", "internlm2"]
SDIST = "llama-cpp-python==0.3.36"


def fetch_llama_cpp() -> Path:
    cache = ROOT / ".cache" / "llama-cpp"
    tree = cache / "llama.cpp"
    if (tree / "convert_hf_to_gguf.py").exists():
        return tree
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-d", str(cache), SDIST],
                   check=True)
    archive = next(cache.glob("llama_cpp_python-*.tar.gz"))
    with tarfile.open(archive) as tar:
        prefix = archive.name[: -len(".tar.gz")] + "/vendor/llama.cpp/"
        wanted = ("convert_hf_to_gguf.py", "conversion/", "gguf-py/")
        members = [m for m in tar.getmembers() if m.name.startswith(prefix) and m.name[len(prefix):].startswith(wanted)]
        for m in members:
            m.name = m.name[len(prefix):]
        tar.extractall(tree, members=members, filter="data")
    return tree


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--llama-cpp", type=Path, help="a llama.cpp source tree (default: fetched into .cache/llama-cpp)")
    args = ap.parse_args()
    tree = (args.llama_cpp or fetch_llama_cpp()).resolve()
    sys.path.insert(0, str(tree / "gguf-py"))
    sys.path.insert(0, str(tree))
    logging.basicConfig(level=logging.WARNING)

    import torch
    import gguf
    from conversion import ModelBase, ModelType, get_model_architecture, get_model_class

    for name in NAMES:
        src = MODELS / name
        out = src / "model.gguf"
        with torch.inference_mode():
            hparams = ModelBase.load_hparams(src, False)
            cls = get_model_class(get_model_architecture(hparams, ModelType.TEXT), mmproj=False)
            with tempfile.TemporaryDirectory() as tmp:
                dtype = hparams.get("dtype", hparams.get("torch_dtype"))
                ftype = {"float32": gguf.LlamaFileType.ALL_F32, "float16": gguf.LlamaFileType.MOSTLY_F16,
                         "bfloat16": gguf.LlamaFileType.MOSTLY_BF16}[dtype]  # as stored: the goldens are of these weights
                model = cls(src, ftype, Path(tmp) / "model.gguf", eager=True)
                model.set_vocab = lambda: None  # no tokenizer in these directories (see above)
                model.write()
                os.replace(Path(tmp) / "model.gguf", out)
        print(f"{out.relative_to(ROOT)}: {cls.__name__}, {dtype}, {out.stat().st_size} bytes")


if __name__ == "__main__":
    main()
