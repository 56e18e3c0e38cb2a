#!/usr/bin/env bash
# How many served windows are exclusive to one account, by window width h (docs/ledger.md): a
# cluster of ACCOUNTS accounts asks the reference model, served by `tracemark model serve
# --provider --ledger`, ANSWERS prompts each of the elicitation suite — half of them the same for
# the whole cluster (overlapping prompts), half its own — and `tracemark ledger show --windows h`
# counts the windows of the ledger for h = 1..4.
#
#   bash scripts/ledger_windows_study.sh [ACCOUNTS=50] [ANSWERS=20] [TOKENS=200]
set -euo pipefail
cd "$(dirname "$0")/.."
accounts="${1:-50}" answers="${2:-20}" tokens="${3:-200}"
tm="${TRACEMARK:-build/cli/tracemark}"
export TRACEMARK_DATA_DIR="${TRACEMARK_DATA_DIR:-$PWD/data}"
tmp=$(mktemp -d)
server=""
trap '[ -n "$server" ] && kill -9 "$server" 2>/dev/null; rm -rf "$tmp"' EXIT
"$tm" keygen --out "$tmp/k.key" > /dev/null
"$tm" canary suite --out "$tmp/suite.jsonl" 2> /dev/null
for ((a = 0; a < accounts; a++)); do echo "sk-$a $((1000 + a))"; done > "$tmp/api-keys.txt"
"$tm" model serve --port 0 --port-file "$tmp/port" --provider --key "$tmp/k.key" \
  --api-keys "$tmp/api-keys.txt" --ledger "$tmp/ledger" --threads 2 2> "$tmp/serve.log" &
server=$!
for _ in $(seq 1 300); do [ -s "$tmp/port" ] && break; sleep 0.1; done
[ -s "$tmp/port" ] || { echo "the server did not start: $(cat "$tmp/serve.log")" >&2; exit 1; }
/usr/bin/python3 - "$tmp" "$accounts" "$answers" "$tokens" <<'PY'
import concurrent.futures, json, sys, urllib.request
tmp, accounts, answers, tokens = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
port = open(f"{tmp}/port").read().strip()
suite = [json.loads(line)["prompt"] for line in open(f"{tmp}/suite.jsonl")]
shared = answers // 2
jobs = [(a, suite[j], a * 1000 + j) for a in range(accounts) for j in range(shared)]
jobs += [(a, suite[(shared + a * (answers - shared) + j) % len(suite)], a * 1000 + 500 + j)
         for a in range(accounts) for j in range(answers - shared)]
def ask(job):
    a, prompt, seed = job
    body = json.dumps({"max_tokens": tokens, "seed": seed,
                       "messages": [{"role": "user", "content": prompt}]}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", body,
                                 {"Authorization": f"Bearer sk-{a}",
                                  "Content-Type": "application/json"})
    json.load(urllib.request.urlopen(req, timeout=300))
with concurrent.futures.ThreadPoolExecutor(2) as pool:
    list(pool.map(ask, jobs))
PY
kill -TERM "$server"
wait "$server"
server=""
"$tm" ledger show "$tmp/ledger" | head -n 1
echo
echo "| h | distinct windows | exclusive to one account | shared |"
echo "|---|---:|---:|---:|"
for h in 1 2 3 4; do
  "$tm" ledger show "$tmp/ledger" --windows "$h" --json | /usr/bin/python3 -c '
import json, sys
w = json.load(sys.stdin)["windows"]
share = 100 * w["exclusive_windows"] / max(w["windows"], 1)
print("| %d | %s | %s (%.1f %%) | %s |" % (w["h"], format(w["windows"], ","),
      format(w["exclusive_windows"], ","), share, format(w["shared_windows"], ",")))'
done
