#!/usr/bin/env bash
# The distillation experiment, CPU variant (docs/distillation.md), in one command: set-up, a Release
# build, the reference model, then bench/distill_study with its default settings (1,000 accounts,
# a fraud cluster of 50, students at 100 / 10 / 1 / 0 % watermarked data; black-box, seen-window
# and white-box provider tests, canary cohorts against 1,000 honest cohorts, fingerprint
# accusations, and the white-box null under 1,000 keys). About 2 minutes on 2 cores after set-up.
# Output: out/distillation/{table.md,result.json}. Extra arguments go to distill_study.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build-rel -G Ninja -DCMAKE_BUILD_TYPE=Release -DTRACEMARK_BUILD_TESTS=OFF >/dev/null
cmake --build build-rel --target distill_study tracemark
[ -f data/refmodel-cl100k-o4.bin ] || build-rel/cli/tracemark model train
mkdir -p out/distillation
build-rel/bench/distill_study --budget 1000000 --queries 1052 --tokens 200 --cohorts 1000 \
  --white-box 20000 --null-keys 1000 --out out/distillation/result.json "$@" \
  | tee out/distillation/table.md
