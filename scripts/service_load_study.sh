#!/usr/bin/env bash
# Figures of the verifier service for docs/service.md: sustained GetScan and small-SubmitScan
# rates with p50/p99 latency from a load generator on loopback, behaviour at twice the capacity
# (fast RESOURCE_EXHAUSTED, bounded memory), and unauthenticated, wrong-role and plaintext calls.
#
#   bash scripts/service_load_study.sh [BUILD_DIR] [SECONDS]     (defaults: build-rel 120)
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build-rel}"
seconds="${2:-120}"
tm="$build/cli/tracemark"
load="$build/studies/service_load"
[ -x "$tm" ] && [ -x "$load" ] || { echo "build $build first (targets tracemark, service_load)" >&2; exit 1; }
data="${TRACEMARK_DATA_DIR:-data}"
tmp="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

"$tm" keygen --out "$tmp/k.key" > /dev/null 2>&1
"$tm" keygen --out "$tmp/s.key" > /dev/null 2>&1
cat > "$tmp/tokens" <<TOKENS
load-submit-token-0123456789 submit load
load-read-token-0123456789 read reader
TOKENS
# The first corpus file, without a pipe (under pipefail `ls | head -1` can die of SIGPIPE: 141).
files=("$data"/npm/sotu/data/*.txt)
first="${files[0]}"
[ -f "$first" ] || { echo "service_load_study.sh: no corpus under $data (run scripts/setup.sh)" >&2; exit 1; }
head -c 1500 "$first" | /usr/bin/python3 -c \
  'import json,sys; print(json.dumps({"prompt": "Continue.", "completion": sys.stdin.read()}))' \
  > "$tmp/one.jsonl"

# start NAME ARGS...: a server on a free loopback port; sets $port and $pid.
start() {
  local name="$1"; shift
  rm -f "$tmp/$name.port"
  "$tm" serve --listen 127.0.0.1:0 --port-file "$tmp/$name.port" --db "$tmp/$name.db" \
    --key "$tmp/k.key" --tokens "$tmp/tokens" --data-dir "$data" --quiet "$@" \
    2> "$tmp/$name.log" &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 300); do [ -s "$tmp/$name.port" ] && break; sleep 0.02; done
  [ -s "$tmp/$name.port" ] || { cat "$tmp/$name.log" >&2; exit 1; }
  port="$(cat "$tmp/$name.port")"
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
field() { /usr/bin/python3 -c "import json,sys; j=json.load(open('$1')); print($2)"; }
export TRACEMARK_TOKEN=load-submit-token-0123456789
remote() { "$tm" remote --insecure --server "127.0.0.1:$port" "$@"; }

echo "== sustained load, ${seconds} s each (server: 1 worker, 1 scan thread)"
start main --insecure --workers 1 --scan-threads 1 --max-inflight 64 --per-client-inflight 64 \
  --max-queued 1000000
id="$(remote --json submit "$tmp/one.jsonl" --watch | /usr/bin/python3 -c \
  'import json,sys; print(json.load(sys.stdin)["id"])')"
"$load" --server "127.0.0.1:$port" --mode get --scan-id "$id" --concurrency 16 \
  --seconds "$seconds" > "$tmp/get.json"
echo "GetScan: $(field "$tmp/get.json" "'%.0f calls/s, p50 %.2f ms, p99 %.2f ms, errors %d' % (j['ok_rate'], j['ok_latency_ms']['p50'], j['ok_latency_ms']['p99'], j['completed'] - j['ok'])")"
"$load" --server "127.0.0.1:$port" --mode submit --upload "$tmp/one.jsonl" --concurrency 4 \
  --seconds "$seconds" > "$tmp/submit.json"
echo "SubmitScan (1.5 kB upload, durable): $(field "$tmp/submit.json" "'%.0f calls/s, p50 %.2f ms, p99 %.2f ms, errors %d' % (j['ok_rate'], j['ok_latency_ms']['p50'], j['ok_latency_ms']['p99'], j['completed'] - j['ok'])")"
done_n="$(remote list --all --state succeeded --limit 1000 | grep -c '^scan-' || true)"
echo "server memory after both: RSS $(( $(rss_kb "$pid") / 1024 )) MiB, peak $(( $(hwm_kb "$pid") / 1024 )) MiB"
kill "$pid"; wait "$pid" 2>/dev/null || true

echo
echo "== overload (--max-inflight 16): submits offered open loop at half and twice their capacity;"
echo "   GetScan with 16 and 32 calls in flight (the limit, and twice it)"
start over --insecure --workers 1 --scan-threads 1 --max-inflight 16 --per-client-inflight 16 \
  --max-queued 1000000
id="$(remote --json submit "$tmp/one.jsonl" --watch | /usr/bin/python3 -c \
  'import json,sys; print(json.load(sys.stdin)["id"])')"
rss0="$(rss_kb "$pid")"
summary="'served %.0f/s, p50 %.2f ms, p99 %.2f ms; RESOURCE_EXHAUSTED %d of %d (%.1f%%) in p50 %.2f ms, p99 %.2f ms; other errors %d' % (j['ok_rate'], j['ok_latency_ms']['p50'], j['ok_latency_ms']['p99'], j['resource_exhausted'], j['completed'], 100.0 * j['resource_exhausted'] / max(1, j['completed']), j['rejected_latency_ms']['p50'], j['rejected_latency_ms']['p99'], j['completed'] - j['ok'] - j['resource_exhausted'])"
"$load" --server "127.0.0.1:$port" --mode submit --upload "$tmp/one.jsonl" --concurrency 4 \
  --seconds 15 > "$tmp/cap.json"
cap="$(field "$tmp/cap.json" "int(j['ok_rate'])")"
echo "SubmitScan capacity (closed loop, 4 in flight): $cap calls/s"
for x in 0.5 2; do
  rate="$(/usr/bin/python3 -c "print(int($x * $cap))")"
  "$load" --server "127.0.0.1:$port" --mode submit --upload "$tmp/one.jsonl" --rate "$rate" \
    --seconds 30 > "$tmp/submit-$x.json"
  echo "  offered ${x}x ($rate/s): $(field "$tmp/submit-$x.json" "$summary"); server RSS $(( $(rss_kb "$pid") / 1024 )) MiB"
done
for conc in 16 32; do
  "$load" --server "127.0.0.1:$port" --mode get --scan-id "$id" --concurrency "$conc" \
    --seconds 30 > "$tmp/get-$conc.json"
  echo "GetScan, $conc in flight: $(field "$tmp/get-$conc.json" "$summary"); server RSS $(( $(rss_kb "$pid") / 1024 )) MiB"
done
echo "server RSS: $((rss0 / 1024)) MiB at start; peak $(( $(hwm_kb "$pid") / 1024 )) MiB"
kill "$pid"; wait "$pid" 2>/dev/null || true

echo "== refused calls (TLS server)"
(cd "$tmp" &&
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=ca &&
  openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1 &&
  printf 'subjectAltName=IP:127.0.0.1' > san.ext &&
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
    -days 2 -extfile san.ext) > /dev/null 2>&1
start tls --tls-cert "$tmp/server.pem" --tls-key "$tmp/server.key"
tls() { "$tm" remote --tls-ca "$tmp/ca.pem" --server "127.0.0.1:$port" "$@"; }
check() {  # check WHAT EXPECTED-TEXT COMMAND...: the call must fail with EXPECTED-TEXT
  local what="$1" want="$2"; shift 2
  if "$@" > /dev/null 2> "$tmp/err"; then echo "$what: ACCEPTED (wrong)"; exit 1; fi
  grep -q "$want" "$tmp/err" || { echo "$what: unexpected error: $(cat "$tmp/err")"; exit 1; }
  echo "$what: refused ($(head -c 120 "$tmp/err"))"
}
TRACEMARK_TOKEN=no-such-token-0123456789 check "unknown token" "unknown token" tls keys
TRACEMARK_TOKEN=load-read-token-0123456789 check "read role submitting" "needs the submit role" \
  tls submit "$tmp/one.jsonl"
check "plaintext to the TLS port" "UNAVAILABLE\|unavailable\|failed to connect\|Socket closed\|error" \
  "$tm" remote --insecure --deadline 3 --server "127.0.0.1:$port" keys
tls keys > /dev/null && echo "TLS with the submit token: served"
