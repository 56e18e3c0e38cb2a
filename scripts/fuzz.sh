#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, AddressSanitizer + UBSan) into build-fuzz/ and runs each
# for SECONDS (default 60) from a copy of its seed corpus (tests/fuzz/corpus/TARGET). Prints, per
# target, the executions and the crashes found; a crashing input is kept under
# build-fuzz/findings/TARGET/ (add it to the seed corpus once fixed: it is then a regression
# test in ctest). Exit 1 if any target crashed.
#
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"; shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_reader fuzz_tokenizer fuzz_report fuzz_scan_request fuzz_keys fuzz_scan_result fuzz_ledger)
command -v clang++-14 > /dev/null || { echo "fuzz.sh: needs clang-14 (apt-get install clang-14)" >&2; exit 1; }
gen=(); command -v ninja > /dev/null && gen=(-G Ninja)
if [ ! -f build-fuzz/CMakeCache.txt ]; then
  cmake -S . -B build-fuzz "${gen[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 -DTRACEMARK_FUZZ=ON \
    -DTRACEMARK_BUILD_TESTS=OFF -DTRACEMARK_BUILD_BENCH=OFF > /dev/null
fi
cmake --build build-fuzz -j "$(nproc)" --target "${targets[@]}"
failed=0
printf '%-20s %12s %10s %8s %s\n' target executions exec/s crashes "corpus (start -> end)"
for t in "${targets[@]}"; do
  work="build-fuzz/runs/$t"; found="build-fuzz/findings/$t"
  rm -rf "$work"; mkdir -p "$work" "$found"
  cp tests/fuzz/corpus/"$t"/* "$work"/
  start=$(ls "$work" | wc -l)
  log="build-fuzz/$t.log"
  set +e
  ASAN_OPTIONS=detect_leaks=0 "build-fuzz/tests/fuzz/$t" "$work" -max_total_time="$seconds" \
    -max_len=65536 -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 \
    -artifact_prefix="$found/" > "$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  crashes=$(ls "$found" | wc -l)
  printf '%-20s %12s %10s %8s %s\n' "$t" "${execs:-0}" "${rate:-0}" "$crashes" \
    "$start -> $(ls "$work" | wc -l)"
  if [ "$rc" != 0 ] || [ "$crashes" != 0 ]; then
    failed=1
    grep -m3 -E "ERROR|SUMMARY|terminate|Assertion" "$log" | sed 's/^/    /' || true
  fi
done
exit "$failed"
