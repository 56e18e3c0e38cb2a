#!/usr/bin/env bash
# Builds the project with sanitizers and runs its tests under them (docs/reliability.md):
#   address  AddressSanitizer + UndefinedBehaviorSanitizer, every test   (build-asan/)
#   thread   ThreadSanitizer, the multi-threaded scanner, the service and the ledger writer (build-tsan/)
#
#   bash scripts/sanitize.sh [address|thread|all]      (default: all)
# Exit 1 on any finding or failing test. Extra ctest arguments can follow the mode. install_test
# is left out: its consumer project is built without the sanitizer runtime, so it cannot link.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-all}"; shift || true
gen=(); command -v ninja > /dev/null && gen=(-G Ninja)
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:ignore_noninstrumented_modules=1:suppressions=$PWD/tests/tsan.supp"
run() {  # run DIR SANITIZERS CTEST-ARGS...
  local dir="$1" san="$2"; shift 2
  cmake -S . -B "$dir" "${gen[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTRACEMARK_SANITIZE="$san" \
    -DTRACEMARK_BUILD_BENCH=OFF > /dev/null
  cmake --build "$dir" -j "$(nproc)"
  (cd "$dir" && ctest --output-on-failure -j "$(nproc)" --timeout 1200 "$@")
}
case "$mode" in
  address) export TRACEMARK_TIME_SCALE=3; run build-asan address,undefined -E install_test "$@" ;;
  thread) export TRACEMARK_TIME_SCALE=10; run build-tsan thread -R "Scan|scan|Service|service|JobStore|Probe|probe|Http|LedgerTest.Threads" "$@" ;;
  all)
    TRACEMARK_TIME_SCALE=3 run build-asan address,undefined -E install_test "$@"
    TRACEMARK_TIME_SCALE=10 run build-tsan thread -R "Scan|scan|Service|service|JobStore|Probe|probe|Http|LedgerTest.Threads" "$@" ;;
  *) echo "sanitize.sh: mode is address, thread or all" >&2; exit 2 ;;
esac
