#!/usr/bin/env bash
# The distillation experiment, CPU variant (docs/distillation.md), in one command: set-up, a Release
# build, the reference model, then
#  1. studies/distill_study with its default settings (1,000 accounts, a fraud cluster of 50,
#     students at 100 / 10 / 1 / 0 % watermarked data; black-box, seen-window and white-box provider
#     tests, canary cohorts against 1,000 honest cohorts, fingerprint accusations, the white-box
#     null under 1,000 keys, and the attacks);
#  2. the investigator's path over real HTTP: the 10 %, 1 % and 0 % students served by
#     `tracemark model serve` on loopback, probed with the elicitation suite by `tracemark probe`
#     (log-probabilities on), and the answers tested by `tracemark scan`;
#  3. the plots (docs/distillation-*.png are made from these files by scripts/distillation_plot.py).
# About 6 minutes on 2 cores after set-up. Output: out/distillation/. Extra arguments go to
# distill_study (e.g. --budget 200000 --queries 200 --cohorts 100 for a quick run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build-rel -G Ninja -DCMAKE_BUILD_TYPE=Release -DTRACEMARK_BUILD_TESTS=OFF >/dev/null
cmake --build build-rel --target distill_study tracemark
tm=build-rel/cli/tracemark
[ -f data/refmodel-cl100k-o4.bin ] || "$tm" model train
out=out/distillation
mkdir -p "$out/students"
[ -f "$out/master.key" ] || "$tm" keygen --out "$out/master.key"
build-rel/studies/distill_study --budget 1000000 --queries 1052 --tokens 200 --cohorts 1000 \
  --white-box 20000 --null-keys 1000 --key "$out/master.key" --save-students "$out/students" \
  --write-harvest "$out/served.jsonl" \
  --out "$out/result.json" "$@" | tee "$out/table.md"

# The investigator's path over HTTP, for the students at 10 %, 1 % and 0 %.
cluster=$(/usr/bin/python3 -c "import json; print(json.load(open('$out/result.json'))['cluster'])")
accounts=$(/usr/bin/python3 -c "import json; print(json.load(open('$out/result.json'))['accounts'])")
seq 0 $((cluster - 1)) > "$out/cluster.txt"
server=""
trap '[ -z "$server" ] || kill "$server" 2>/dev/null || true' EXIT
echo "| student | answers | provider p (sampled text) | at seen windows | white-box p (reported log-probabilities) | white-box at seen windows | window probes: white-box p | canary cohort p | best canary account (corrected p) |" > "$out/http.md"
echo "|---|---|---|---|---|---|---|---|---|" >> "$out/http.md"
for share in 0.1 0.01 0; do
  model="$out/students/student-$share.bin"
  [ -f "$model" ] || continue
  rm -f "$out/port" && rm -rf "$out/probe-$share"
  "$tm" model serve --model "$model" --name "student-$share" --port 0 --port-file "$out/port" \
    2> "$out/serve-$share.log" &
  server=$!
  for _ in $(seq 1 600); do [ -s "$out/port" ] && break; sleep 0.1; done
  "$tm" probe --endpoint "http://127.0.0.1:$(cat "$out/port")/v1" --model "student-$share" \
    --send prefix --max-tokens 200 --logprobs 1 --concurrency 2 --out "$out/probe-$share"
  # Window probes: 20,000 windows of what the cluster was served, each asked for one token.
  rm -rf "$out/windows-$share"
  "$tm" probe --endpoint "http://127.0.0.1:$(cat "$out/port")/v1" --model "student-$share" \
    --windows-from "$out/served.jsonl" --windows 20000 --concurrency 2 --out "$out/windows-$share"
  kill "$server"; wait "$server" 2>/dev/null || true; server=""
  "$tm" scan --key "$out/master.key" --accounts "$accounts" --cohort "$out/cluster.txt" --json \
    --seen-in "$out/served.jsonl" --no-progress "$out/probe-$share" > "$out/scan-$share.json"
  "$tm" scan --key "$out/master.key" --no-canary --json --no-progress "$out/windows-$share" \
    > "$out/scan-windows-$share.json"
  /usr/bin/python3 - "$out/scan-$share.json" "$share" "$out/scan-windows-$share.json" \
    >> "$out/http.md" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
wp = json.load(open(sys.argv[3]))["white_box"]
c = j["canary"]
top = c["attribution"]["top"][0]
g = lambda p: p if isinstance(p, str) else f"{p:.2g}"
s = j["seen_windows"]
print(f"| {float(sys.argv[2]) * 100:g} % | {len(j['documents'])} | {g(j['provider']['p_value'])} "
      f"({j['provider']['tuples_scored']} tuples) | {g(s['provider_p_value'])} "
      f"({s['provider_tuples']}) | {g(j['white_box']['p_value'])} ({j['white_box']['tuples']}) "
      f"| {g(s['white_box_p_value'])} ({s['white_box_tuples']}) "
      f"| {g(wp['p_value'])} ({wp['tuples']} of {wp['documents']}) | {g(c['cohort']['p_value'])} "
      f"| {top['account']} ({g(c['attribution']['corrected_p_value'])}) |")
PY
done
cat "$out/http.md"
