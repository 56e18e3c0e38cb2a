#!/usr/bin/env bash
# The serving ledger's studies at small settings (docs/ledger.md quotes the full ones): the store
# comparison and the one-process scale run. Checks what must hold at any size: every record read
# back, the segment files within the 4-bytes-per-token goal and smaller than SQLite, and the window
# index counting every served position.
set -euo pipefail
store="$1"
scale="$2"
tm="$3"
data="$4"
tmp=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
"$tm" model train --data-dir "$data" --order 2 --out "$tmp/m.bin" >/dev/null 2>&1
"$store" --data-dir "$data" --model "$tmp/m.bin" --answers 120 --tokens 80 --dir "$tmp/store" \
  --out "$tmp/store.json" 2> "$tmp/store.log" || fail "store study: $(cat "$tmp/store.log")"
"$scale" --data-dir "$data" --model "$tmp/m.bin" --records 2000 --tokens 100 --dir "$tmp/scale" \
  --out "$tmp/scale.json" 2> "$tmp/scale.log" || fail "scale study: $(cat "$tmp/scale.log")"
/usr/bin/python3 - "$tmp/store.json" "$tmp/scale.json" <<'PY' || fail "checks on the results"
import json, sys
store, scale = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
rows = {r["store"]: r for r in store["stores"]}
assert set(rows) == {"segments-1", "segments-3", "segments-9", "sqlite", "sqlite-zstd"}, rows
ids = rows["sqlite"]["response_ids"]
for r in rows.values():
    assert r["records"] == 120 and r["response_ids"] == ids, r
assert rows["segments-3"]["bytes_per_response_id"] < 4, rows["segments-3"]
assert rows["segments-3"]["bytes"] < rows["sqlite"]["bytes"], rows
assert scale["records"] == 2000 and scale["response_ids"] == 200000, scale
assert scale["windows"] <= scale["pairs"] <= scale["response_ids"], scale
assert 0 < scale["exclusive_windows"] <= scale["windows"], scale
PY
echo PASS
