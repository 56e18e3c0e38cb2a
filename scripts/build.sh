#!/usr/bin/env bash
# Configures and builds tracemark into build/ (Release with debug info). Extra arguments go to cmake.
set -euo pipefail
cd "$(dirname "$0")/.."
werror=OFF; [ "${CI:-}" = true ] && werror=ON
gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
if [ ! -f build/CMakeCache.txt ]; then
  cmake -S . -B build "${gen[@]}" -DTRACEMARK_WERROR=$werror "$@"
else
  cmake -S . -B build -DTRACEMARK_WERROR=$werror "$@" >/dev/null
fi
cmake --build build -j "$(nproc)"
