#!/usr/bin/env bash
# Tokenizer set-up, run by scripts/setup.sh after its packages (ICU, libsentencepiece and the
# sentencepiece tools) and the pinned data are in place (idempotent):
#  - the built-in SentencePiece model data/spm/sotu-bpe8k.model: BPE, 8000 pieces, byte fallback,
#    no normalization, trained on the State of the Union corpus with deterministic options. The
#    result is bit-reproducible (sentencepiece 0.1.97 records its input paths and options in the
#    model, so it is trained from the repository root with relative paths) and checked against
#    the SHA-256 below.
set -euo pipefail
cd "$(dirname "$0")/.."

model=data/spm/sotu-bpe8k.model
expected_sha=138675d2ae2ad595365d129fb04e146f0338cf418744f819b0c8124c2f8a4f77
if [ -f "$model" ] && [ "$(sha256sum "$model" | cut -d' ' -f1)" = "$expected_sha" ]; then
  exit 0
fi
inputs="$(ls data/npm/sotu/data/*.txt 2>/dev/null | LC_ALL=C sort | paste -sd, -)"
if [ -z "$inputs" ]; then
  echo "tokenizer_setup: data/npm/sotu/data is empty; run scripts/setup.sh first" >&2
  exit 1
fi
echo "tokenizer_setup: training $model"
mkdir -p data/spm
spm_train --input="$inputs" --model_prefix=data/spm/sotu-bpe8k --model_type=bpe \
  --vocab_size=8000 --character_coverage=1.0 --byte_fallback=true \
  --normalization_rule_name=identity --remove_extra_whitespaces=false \
  --max_sentence_length=65536 --input_sentence_size=0 --shuffle_input_sentence=false \
  --random_seed=1 --num_threads=2 --minloglevel=2
got="$(sha256sum "$model" | cut -d' ' -f1)"
if [ "$got" != "$expected_sha" ]; then
  echo "tokenizer_setup: $model has SHA-256 $got, expected $expected_sha" \
       "(a different sentencepiece version or corpus?)" >&2
  exit 1
fi
