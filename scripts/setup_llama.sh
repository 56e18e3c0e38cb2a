#!/usr/bin/env bash
# Optional set-up step for the llama.cpp sampler adapter (docs/integrations.md, "llama.cpp").
#
# llama.cpp is not packaged for Debian 12. Its source comes from the npm package node-llama-cpp,
# pinned by version and SHA-256, which carries the whole tree as a git bundle. This script unpacks
# it into data/llama.cpp (checked against the pinned commit), builds libllama and libggml for the
# CPU in Release and installs them with their CMake package into data/llama, where
# `find_package(llama)` finds them (each library finds the others beside it: RPATH $ORIGIN):
#
#   bash scripts/setup_llama.sh
#   cmake -S . -B build -DTRACEMARK_LLAMA=ON -DCMAKE_PREFIX_PATH=$PWD/data/llama
#
# Idempotent: a tree already at the pinned commit and an install stamp for it are kept. Needs the
# packages scripts/setup.sh installs, plus python3-yaml and python3-tqdm for gguf-py (installed
# here when missing). Takes 5-15 minutes on two cores the first time.
set -euo pipefail
cd "$(dirname "$0")/.."

NLC_SPEC="node-llama-cpp@3.22.1"
NLC_SHA256="a0d9dd80eacd2ab1cfe71aee57ac8a806487fd70b3d2a38fbec637752d9e5c5f"
# The commit the bundle holds (node-llama-cpp's llama.cpp release tag v0.5.0, squashed).
LLAMA_COMMIT="de3ff815ea7d559ee917f063901b8986f038abc6"
JOBS="${JOBS:-$(nproc)}"
# What the install stamp records: the commit and the build settings that matter to users.
BUILD_ID="$LLAMA_COMMIT cpu-release rpath-origin"

source scripts/apt_install.sh
apt_install setup_llama python3-yaml python3-tqdm git cmake ninja-build

source scripts/fetch_npm.sh
fetch_npm "$NLC_SPEC" "$NLC_SHA256" node-llama-cpp

src=data/llama.cpp
if [ "$(git -C "$src" rev-parse HEAD 2>/dev/null || true)" != "$LLAMA_COMMIT" ]; then
  echo "setup_llama: unpacking llama.cpp from node-llama-cpp's git bundle"
  rm -rf "$src"
  git -c advice.detachedHead=false clone -q data/npm/node-llama-cpp/llama/gitRelease.bundle "$src"
  got="$(git -C "$src" rev-parse HEAD)"
  if [ "$got" != "$LLAMA_COMMIT" ]; then
    echo "setup_llama: the bundle holds commit $got, expected $LLAMA_COMMIT" >&2
    exit 1
  fi
fi

prefix="$PWD/data/llama"
stamp="$prefix/.commit"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$BUILD_ID" ] &&
   [ -f "$prefix/lib/cmake/llama/llama-config.cmake" ]; then
  echo "setup_llama: llama.cpp $LLAMA_COMMIT already installed in $prefix"
  exit 0
fi

echo "setup_llama: building libllama (CPU, Release) with $JOBS jobs"
start=$(date +%s)
cmake -S "$src" -B data/llama-build -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_INSTALL_PREFIX="$prefix" -DCMAKE_INSTALL_RPATH='$ORIGIN' -DBUILD_SHARED_LIBS=ON \
  -DGGML_NATIVE=OFF \
  -DLLAMA_BUILD_COMMON=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_TOOLS=OFF \
  -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF \
  -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_IS_DEV=OFF >data/llama-cmake.log 2>&1 ||
  { tail -30 data/llama-cmake.log >&2; exit 1; }
cmake --build data/llama-build -j "$JOBS" >data/llama-build.log 2>&1 ||
  { tail -40 data/llama-build.log >&2; exit 1; }
rm -rf "$prefix"
cmake --install data/llama-build >>data/llama-build.log 2>&1 ||
  { tail -20 data/llama-build.log >&2; exit 1; }
echo "$BUILD_ID" > "$stamp"
echo "setup_llama: installed in $prefix ($(( $(date +%s) - start )) s)"
