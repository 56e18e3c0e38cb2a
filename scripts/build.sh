#!/usr/bin/env bash
# Configures and builds tracemark into build/ (Release with debug info). Extra arguments go to cmake.
set -euo pipefail
cd "$(dirname "$0")/.."
werror=OFF; [ "${CI:-}" = true ] && werror=ON
gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
# The Python package, against Debian's interpreter (the one with python3-torch and numpy).
opts=(-DTRACEMARK_PYTHON=ON -DPython3_EXECUTABLE=/usr/bin/python3)
# The llama.cpp sampler adapter, when scripts/setup_llama.sh has installed llama.cpp.
if [ -f data/llama/lib/cmake/llama/llama-config.cmake ]; then
  opts+=(-DTRACEMARK_LLAMA=ON "-DCMAKE_PREFIX_PATH=$PWD/data/llama")
fi
# The batched CUDA kernel, when the CUDA toolkit is installed (no GPU is needed to build it or to
# run its host-reference tests; the device tests skip without one).
nvcc="$(command -v nvcc || true)"; [ -z "$nvcc" ] && [ -x /usr/local/cuda/bin/nvcc ] && nvcc=/usr/local/cuda/bin/nvcc
if [ -n "$nvcc" ]; then
  opts+=(-DTRACEMARK_CUDA=ON "-DCMAKE_CUDA_COMPILER=$nvcc")
fi
if [ ! -f build/CMakeCache.txt ]; then
  cmake -S . -B build "${gen[@]}" -DTRACEMARK_WERROR=$werror "${opts[@]}" "$@"
else
  cmake -S . -B build -DTRACEMARK_WERROR=$werror "${opts[@]}" "$@" >/dev/null
fi
cmake --build build -j "$(nproc)"
