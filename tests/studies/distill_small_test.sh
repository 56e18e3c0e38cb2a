#!/usr/bin/env bash
# The distillation experiment at small settings (the full one is scripts/distillation.sh): a
# teacher trained here, 1,000 accounts, a cluster of 50, students at 100 % and 0 % watermarked data
# and the three attacks on the 100 % student. Checks what must hold at any size: the provider layer
# is found in the 100 % student by the white-box test, the control stays null, no honest account
# is accused, and the attacks run and report.
set -euo pipefail
study="$1"
tm="$2"
data="$3"
tmp=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
"$tm" model train --data-dir "$data" --order 4 --out "$tmp/teacher.bin" >/dev/null 2>&1
"$study" --data-dir "$data" --model "$tmp/teacher.bin" --budget 60000 --queries 60 --tokens 150 \
  --cohorts 50 --white-box 3000 --shares 1,0 --attack-shares 1 --continue-tokens 60000 \
  --save-students "$tmp" --out "$tmp/result.json" > "$tmp/table.md" 2> "$tmp/log"
cat "$tmp/table.md"
/usr/bin/python3 - "$tmp/result.json" <<'PY' || fail "checks on the result"
import json, sys
j = json.load(open(sys.argv[1]))
rows = {r["label"]: r for r in j["rows"]}
full, control = rows["100 %"], rows["0 %"]
assert full["provider_white_box_log10_p"] < -10, full
assert full["provider_log10_p"] < -6, full
assert control["provider_white_box_log10_p"] > -3, control
assert control["provider_log10_p"] > -3, control
assert control["provider_seen_windows_log10_p"] > -3, control
for r in j["rows"]:
    assert r["fingerprint_honest_accused_1e-3"] == 0, r
attacks = [r for r in j["rows"] if r["label"].startswith("100 %,")]
assert len(attacks) == 3, [r["label"] for r in attacks]
assert j["white_box_null"]["n"] > 0 if "white_box_null" in j else True
print("distill_small: all checks passed")
PY
[ -f "$tmp/student-1.bin" ] && [ -f "$tmp/student-0.bin" ] || fail "students not saved"
