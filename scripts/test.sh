#!/usr/bin/env bash
# Set up, build and run every test (what CI runs). Extra arguments go to ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup_llama.sh  # llama.cpp from node-llama-cpp, for the llama.cpp sampler's tests
bash scripts/build.sh
cd build
ctest --output-on-failure -j "$(nproc)" "$@"
