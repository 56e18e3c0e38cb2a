#!/usr/bin/env bash
# The GPU variant of the distillation experiment (docs/distillation.md), in three steps:
#   scripts/distillation_gpu.sh export        # here: the students' training data, windows, prompts
#   python3 scripts/gpu_student.py out/gpu    # on the GPU machine (PyTorch with CUDA)
#   scripts/distillation_gpu.sh score         # here: every test on the GPU students
# The same master key and settings as scripts/distillation.sh, so the two tables compare row by
# row. Extra arguments go to distill_study in both steps (give the same ones).
set -euo pipefail
cd "$(dirname "$0")/.."
step="${1:?usage: distillation_gpu.sh export|score [distill_study flags]}"
shift
cmake -S . -B build-rel -G Ninja -DCMAKE_BUILD_TYPE=Release -DTRACEMARK_BUILD_TESTS=OFF >/dev/null
cmake --build build-rel --target distill_study tracemark >/dev/null
[ -f data/refmodel-cl100k-o4.bin ] || build-rel/cli/tracemark model train
mkdir -p out/gpu out/distillation
[ -f out/distillation/master.key ] || build-rel/cli/tracemark keygen --out out/distillation/master.key
settings=(--budget 1000000 --queries 1052 --tokens 200 --cohorts 1000 --white-box 20000
  --attack-shares "" --key out/distillation/master.key)
case "$step" in
  export) build-rel/studies/distill_study "${settings[@]}" --export out/gpu "$@" ;;
  score)
    build-rel/studies/distill_study "${settings[@]}" --student-from out/gpu \
      --out out/gpu/result.json "$@" | tee out/gpu/table.md ;;
  *) echo "unknown step '$step' (export or score)" >&2; exit 2 ;;
esac
