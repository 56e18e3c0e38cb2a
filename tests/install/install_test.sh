#!/usr/bin/env bash
# Installs the build tree into a temporary prefix, then builds and runs a consumer project that
# uses find_package(tracemark) (C++ and C targets) and checks the pkg-config file.
set -euo pipefail
build_dir="$1"
source_dir="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build_dir" --prefix "$tmp/prefix" > /dev/null
cmake -S "$source_dir/consumer" -B "$tmp/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" > /dev/null
cmake --build "$tmp/build" > /dev/null
"$tmp/build/cpp_consumer"
LD_LIBRARY_PATH="$tmp/prefix/lib" "$tmp/build/c_consumer"
libs="$(PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig" pkg-config --libs tracemark)"
case "$libs" in
  *"-L$tmp/prefix/lib"*"-ltracemark"*) echo "pkg-config: $libs" ;;
  *) echo "pkg-config gives '$libs', expected -L$tmp/prefix/lib -ltracemark" >&2; exit 1 ;;
esac
