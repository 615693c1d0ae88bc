#!/usr/bin/env bash
# The accuracy table of docs/QUANTIZATION.md: perplexity of the default model on Debian
# Administrator's Handbook prose (tools/prose_text.py: eval.txt, calibration from the disjoint
# calib.txt) for the base model, RTN and AWQ 4-bit weights, on the CPU.
#   tools/quant_accuracy.sh [OUT_DIR]   (needs: apt-get install debian-handbook; a built turbine)
# Environment: TOKENS (scored tokens, default 51200), CTX (window, 512), CALIB_SAMPLES (64),
# CALIB_SEQLEN (512), TURBINE_BIN (build/examples/turbine), MODEL (the default model).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$here/.cache/quant_accuracy}"
bin="${TURBINE_BIN:-$here/build/examples/turbine}"
model="${MODEL:-$here/.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
tokens="${TOKENS:-51200}" ctx="${CTX:-512}"
mkdir -p "$out"
python3 "$here/tools/prose_text.py" "$out/text"
ppl() {  # name, model, [kv], [more flags]
  local r
  r=$("$bin" eval ppl "$2" --device cpu --kv "${3:-same}" ${4:-} --text "$out/text/eval.txt" --ctx "$ctx" \
    --max-tokens "$((tokens + tokens / (ctx - 1) + 1))" --json 2>/dev/null)
  echo "$r" >"$out/ppl_${1// /_}.json"
  printf '%-28s %s\n' "$1" "$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print("ppl %.4f over %d tokens" % (d["ppl"], d["scored_tokens"]))' "$r")"
}
if [ "${SKIP_QUANTIZE:-0}" = 1 ]; then  # the rows alone, from the directories already made
  for name in ${ROWS:-base rtn awq base_kv_int8 base_kv_int4 awq_kv_int8 base_head4 awq_head4}; do
    case $name in
      base_head4) ppl "base + 4-bit LM head" "$model" same --lm-head-int4 ;;
      awq_head4) ppl "awq + 4-bit LM head" "$out/awq" same --lm-head-int4 ;;
      base) ppl base "$model" ;;
      rtn | awq) ppl "$name" "$out/$name" ;;
      base_kv_int8) ppl "base + KV int8" "$model" int8 ;;
      base_kv_int4) ppl "base + KV int4" "$model" int4 ;;
      awq_kv_int8) ppl "awq + KV int8" "$out/awq" int8 ;;
    esac
  done
  exit 0
fi
t0=$(date +%s)
"$bin" quantize "$model" --method rtn -o "$out/rtn" >"$out/quantize_rtn.log"
"$bin" quantize "$model" --method awq --calib "$out/text/calib.txt" --calib-samples "${CALIB_SAMPLES:-64}" \
  --calib-seqlen "${CALIB_SEQLEN:-512}" -o "$out/awq" >"$out/quantize_awq.log"
echo "quantized in $(($(date +%s) - t0)) s; $(tail -2 "$out/quantize_awq.log" | head -1)"
ppl base "$model"
ppl rtn "$out/rtn"
ppl awq "$out/awq"
ppl "base + KV int8" "$model" int8
ppl "base + KV int4" "$model" int4
ppl "awq + KV int8" "$out/awq" int8
ppl "base + 4-bit LM head" "$model" same --lm-head-int4
ppl "awq + 4-bit LM head" "$out/awq" same --lm-head-int4
