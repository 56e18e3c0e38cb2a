#!/usr/bin/env bash
# The null of the distillation tests under the key that made the harvest (docs/distillation.md):
# for K fresh master keys, a harvest, a control student that never saw it (trained on clean text
# only), and its seen-window and white-box tests under that same key. The windows tested are
# chosen by the key's own harvest, so this checks that choosing them does not bias the test; the
# p-values must be uniform. Prints the KS test and the smallest p-values.
#   scripts/distillation_null.sh [K=40]
set -euo pipefail
cd "$(dirname "$0")/.."
k="${1:-40}"
cmake --build build-rel --target distill_study tracemark >/dev/null
out=out/distillation/null
mkdir -p "$out"
for i in $(seq 1 "$k"); do
  key="$out/key-$i"
  [ -f "$key" ] || build-rel/cli/tracemark keygen --out "$key" >/dev/null 2>&1
  [ -f "$out/result-$i.json" ] || build-rel/studies/distill_study --key "$key" --shares 0 \
    --attack-shares "" --budget 200000 --queries 500 --tokens 200 --cohorts 10 --white-box 5000 \
    --out "$out/result-$i.json" > /dev/null 2>&1
  echo "  key $i of $k done" >&2
done
/usr/bin/python3 - "$out" "$k" <<'PY'
import json, math, sys
out, k = sys.argv[1], int(sys.argv[2])
rows = [json.load(open(f"{out}/result-{i}.json"))["rows"][0] for i in range(1, k + 1)]
def ks(ps):
    ps = sorted(ps); n = len(ps)
    d = max(max((i + 1) / n - p, p - i / n) for i, p in enumerate(ps))
    # Asymptotic Kolmogorov distribution (n >= 40 is fine for a check).
    t = (math.sqrt(n) + 0.12 + 0.11 / math.sqrt(n)) * d
    q = 2 * sum((-1) ** (j - 1) * math.exp(-2 * j * j * t * t) for j in range(1, 100))
    return d, min(1.0, max(0.0, q))
for key, name in [("provider_log10_p", "black-box, all tuples"),
                  ("provider_seen_windows_log10_p", "black-box, seen windows"),
                  ("provider_white_box_log10_p", "white-box"),
                  ("provider_white_box_lower_tail_log10_p", "white-box, lower tail")]:
    ps = [10 ** r[key] for r in rows]
    d, p = ks(ps)
    print(f"| {name} | {len(ps)} | {d:.3f} | {p:.2f} | {min(ps):.3g} | "
          f"{sum(x <= 0.05 for x in ps)} |")
PY
