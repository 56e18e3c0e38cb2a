#!/usr/bin/env bash
# Probing from the command line, as an investigator runs it against a real HTTP endpoint: a
# watermarked model served with `tracemark model serve --provider` (API keys mapped to accounts),
# the elicitation suite sent by `tracemark probe` with log-probabilities, the probe interrupted and
# resumed, the server killed mid-probe and the probe finished against a restarted server, then
# `tracemark scan DIR` attributing the answers; and clear failures on bad input.
set -euo pipefail
tm="$1"
data="$2"
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  [ -n "${KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
echo "work dir: $tmp" >&2
export TRACEMARK_DATA_DIR="$data"
fail() { echo "FAIL: $*" >&2; exit 1; }
json() { /usr/bin/python3 -c "import json,sys; j=json.load(open('$1')); print($2)"; }
lines() { wc -l < "$1" | tr -d ' '; }
ids_unique() { /usr/bin/python3 -c "
import json,sys; ids=[json.loads(l)['id'] for l in open('$1')]; sys.exit(len(ids) != len(set(ids)))"; }

printf '%s' 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef \
  | xxd -r -p > "$tmp/k.key"
chmod 600 "$tmp/k.key"
"$tm" model train --order 2 --out "$tmp/m.bin" >/dev/null 2>&1
printf 'sk-fraud-31 31\nsk-honest-5 5\n' > "$tmp/api-keys.txt"

serve() {  # starts a server on a free port; sets $port
  rm -f "$tmp/port"
  "$tm" model serve --model "$tmp/m.bin" --port 0 --port-file "$tmp/port" --provider \
    --key "$tmp/k.key" --canary --api-keys "$tmp/api-keys.txt" 2>> "$tmp/serve.log" &
  server=$!
  disown "$server"
  pids+=("$server")
  for _ in $(seq 1 300); do [ -s "$tmp/port" ] && break; sleep 0.1; done
  [ -s "$tmp/port" ] || fail "server did not start: $(cat "$tmp/serve.log")"
  port=$(cat "$tmp/port")
}
serve
export FRAUD_KEY=sk-fraud-31 WRONG_KEY=sk-nobody
# The probe command as an array, so that a background run's $! is the probe itself.
probe_args() {
  args=("$tm" probe --endpoint "http://127.0.0.1:$port/v1" --api-key-env FRAUD_KEY --send prefix
    --limit 120 --max-tokens 200 --logprobs 2 --out "$tmp/probe" --no-progress)
}
probe() { probe_args; "${args[@]}" "$@"; }

# Interrupted with SIGINT part-way: a clear message, a non-zero exit, the answers so far kept.
probe_args
"${args[@]}" --concurrency 1 > "$tmp/p1.out" 2> "$tmp/p1.err" &
prober=$!
for _ in $(seq 1 100); do
  [ -f "$tmp/probe/answers.jsonl" ] && [ "$(lines "$tmp/probe/answers.jsonl")" -ge 10 ] && break
  sleep 0.1
done
kill -INT "$prober"
if wait "$prober"; then fail "an interrupted probe exited 0"; fi
grep -q "interrupted" "$tmp/p1.err" || fail "no interruption message: $(cat "$tmp/p1.err")"
first=$(lines "$tmp/probe/answers.jsonl")
[ "$first" -ge 10 ] && [ "$first" -lt 120 ] || fail "interrupted probe kept $first answers"

# The server killed mid-probe: the remaining requests fail after their retries, and say so.
"${args[@]}" --concurrency 2 --attempts 2 --timeout 5 > "$tmp/p2.out" 2> "$tmp/p2.err" &
prober=$!
target=$((first + 10))
for _ in $(seq 1 100); do
  [ "$(lines "$tmp/probe/answers.jsonl")" -ge "$target" ] && break
  sleep 0.1
done
kill -9 "$server"
if wait "$prober"; then fail "a probe whose server died exited 0"; fi
grep -q "failed; rerun" "$tmp/p2.err" || fail "no failure message: $(cat "$tmp/p2.err")"
second=$(lines "$tmp/probe/answers.jsonl")
[ "$second" -gt "$first" ] && [ "$second" -lt 120 ] || fail "second run: $first -> $second"

# A restarted server (a new port) and the same command: only the rest is asked.
serve
probe > "$tmp/p3.out" 2> "$tmp/p3.err" || fail "resumed probe: $(cat "$tmp/p3.err")"
grep -q "$second already there" "$tmp/p3.out" || fail "resume count: $(cat "$tmp/p3.out")"
[ "$(lines "$tmp/probe/answers.jsonl")" = 120 ] || fail "not 120 answers"
ids_unique "$tmp/probe/answers.jsonl" || fail "duplicate answers"
if grep -q "sk-fraud-31" "$tmp/probe/answers.jsonl" "$tmp/probe/.tracemark-probe.json"; then
  fail "the API key was written to the probe directory"
fi

# The scan: the provider watermark, the account behind the key, and the white-box test on the
# endpoint's log-probabilities (the served model's own, before the watermark: null).
"$tm" scan --key "$tmp/k.key" --accounts 100 --json "$tmp/probe" > "$tmp/scan.json"
[ "$(json "$tmp/scan.json" "len(j['documents'])")" = 120 ] || fail "documents scanned"
[ "$(json "$tmp/scan.json" "float(j['provider']['p_value']) < 1e-12")" = True ] || fail "provider p"
[ "$(json "$tmp/scan.json" "j['accounts'][0]['account']")" = 31 ] || fail "account not 31"
[ "$(json "$tmp/scan.json" "j['canary']['attribution']['top'][0]['account']")" = 31 ] \
  || fail "canary account not 31"
[ "$(json "$tmp/scan.json" "j['white_box']['documents']")" = 120 ] || fail "white-box documents"
[ "$(json "$tmp/scan.json" "float(j['white_box']['p_value']) > 1e-4")" = True ] \
  || fail "white-box of the raw model is not null"

[ "$(json "$tmp/scan.json" "[w for w in j['warnings'] if 'round-trip' in w]")" = "[]" ] ||
  fail "the right tokenizer was warned about: $(json "$tmp/scan.json" "j['warnings']")"
# The wrong tokenizer (the answers are cl100k_base's): the text summary says so, not only --json.
"$tm" scan --key "$tmp/k.key" --accounts 100 --no-progress --tokenizer o200k_base "$tmp/probe" \
  > "$tmp/wrong.out" 2>&1
grep -q "^key [0-9a-f]* .*tokenizer o200k_base" "$tmp/wrong.out" || fail "no key/tokenizer line"
grep -Eq "^warning: .*(round-trip|log-probabilities were not used)" "$tmp/wrong.out" ||
  fail "a wrong tokenizer got no warning: $(head -5 "$tmp/wrong.out")"
# A signed evidence report of that scan: verified with the public key, tied to its input by digest;
# a changed byte, another key or other data fail; neither secret appears in it.
"$tm" keygen --out "$tmp/sign.key" >/dev/null 2>&1
"$tm" keygen --out "$tmp/other-wm.key" >/dev/null 2>&1
"$tm" report public-key --signing-key "$tmp/sign.key" > "$tmp/sign.pub" 2>/dev/null
"$tm" scan --key "$tmp/k.key" --accounts 100 --report "$tmp/report.json" \
  --signing-key "$tmp/sign.key" --no-progress "$tmp/probe" > /dev/null 2>&1
"$tm" report verify "$tmp/report.json" --public-key "$tmp/sign.pub" --inputs "$tmp/probe" \
  > "$tmp/verify.out" || fail "report verify: $(cat "$tmp/verify.out")"
grep -q "signature valid" "$tmp/verify.out" || fail "verify output"
grep -q "1 of 1 match" "$tmp/verify.out" || fail "input digest check"
"$tm" report verify "$tmp/report.json" --public-key "$(cat "$tmp/sign.pub")" --json \
  > "$tmp/verify.json"
[ "$(json "$tmp/verify.json" "j['report']['result']['accounts'][0]['account']")" = 31 ] \
  || fail "report result"
# Recomputed from a copy of the inputs elsewhere with the watermark key: identical; a key that is
# not the report's is refused.
cp -r "$tmp/probe" "$tmp/probe-copy"
"$tm" report verify "$tmp/report.json" --public-key "$tmp/sign.pub" --inputs "$tmp/probe-copy" \
  --key "$tmp/k.key" > "$tmp/verify.out" || fail "recompute: $(cat "$tmp/verify.out")"
grep -q "recomputed from the inputs: identical result" "$tmp/verify.out" || fail "recompute output"
if "$tm" report verify "$tmp/report.json" --public-key "$tmp/sign.pub" --inputs "$tmp/probe" \
  --key "$tmp/other-wm.key" 2> "$tmp/err" > /dev/null; then fail "recomputed with another key"; fi
grep -q "is not the report's" "$tmp/err" || fail "unclear error: $(cat "$tmp/err")"
"$tm" report render "$tmp/report.json" --public-key "$tmp/sign.pub" --format html \
  --out "$tmp/report.html"
grep -q "<svg" "$tmp/report.html" && grep -q "Signature: valid" "$tmp/report.html" \
  || fail "HTML rendering"
"$tm" report render "$tmp/report.json" --public-key "$tmp/sign.pub" --out "$tmp/report.md"
grep -q "Signature: valid" "$tmp/report.md" || fail "rendering"
grep -q "^| 31 |" "$tmp/report.md" || fail "the attributed account is not in the rendering"
sed 's/"payload": "e/"payload": "f/' "$tmp/report.json" > "$tmp/tampered.json"
if "$tm" report verify "$tmp/tampered.json" --public-key "$tmp/sign.pub" 2> "$tmp/err"; then
  fail "a tampered report verified"
fi
grep -q "signature verification failed" "$tmp/err" || fail "unclear error: $(cat "$tmp/err")"
if "$tm" report render "$tmp/tampered.json" --public-key "$tmp/sign.pub" > /dev/null 2>&1; then
  fail "a tampered report rendered"
fi
"$tm" keygen --out "$tmp/other.key" >/dev/null 2>&1
if "$tm" report verify "$tmp/report.json" --public-key \
  "$("$tm" report public-key --signing-key "$tmp/other.key" 2>/dev/null)" 2>/dev/null; then
  fail "verified with another key"
fi
if "$tm" report verify "$tmp/report.json" --public-key "$tmp/sign.pub" \
  --inputs "$tmp/api-keys.txt" > /dev/null 2> "$tmp/err"; then fail "other data accepted"; fi
grep -q "other data" "$tmp/err" || fail "unclear error: $(cat "$tmp/err")"
/usr/bin/python3 - "$tmp/report.json" "$tmp/k.key" "$tmp/sign.key" <<'PY' || fail "a secret in the report"
import base64, json, sys
payload = base64.b64decode(json.load(open(sys.argv[1]))["payload"])
for key in sys.argv[2:]:
    raw = open(key, "rb").read()
    assert raw not in payload and raw.hex().encode() not in payload, key
PY

# Bad input: a refused key, a missing variable, a bad URL, a directory of another probe.
if WRONG=1 "$tm" probe --endpoint "http://127.0.0.1:$port/v1" --api-key-env WRONG_KEY \
  --limit 3 --out "$tmp/p-wrong" 2> "$tmp/err"; then fail "wrong key accepted"; fi
grep -q "HTTP 401" "$tmp/err" || fail "unclear error: $(cat "$tmp/err")"
if "$tm" probe --endpoint "http://127.0.0.1:$port/v1" --api-key-env NOT_SET_ANYWHERE \
  --limit 3 --out "$tmp/p-x" 2> "$tmp/err"; then fail "missing variable accepted"; fi
grep -q "NOT_SET_ANYWHERE" "$tmp/err" || fail "unclear error: $(cat "$tmp/err")"
if "$tm" probe --endpoint "localhost:$port" --limit 3 --out "$tmp/p-y" 2> "$tmp/err"; then
  fail "bad URL accepted"
fi
grep -q "http://" "$tmp/err" || fail "unclear error: $(cat "$tmp/err")"
if "$tm" probe --endpoint "http://127.0.0.1:$port/v1" --api-key-env FRAUD_KEY --send prefix \
  --limit 120 --max-tokens 50 --out "$tmp/probe" 2> "$tmp/err"; then
  fail "another probe's directory reused"
fi
grep -q "different probe" "$tmp/err" || fail "unclear error: $(cat "$tmp/err")"
# Every prompt refused alike (here max_tokens above the server's limit; on a real API, a missing
# "model"): the probe stops early with the server's own message instead of asking them all.
if "$tm" probe --endpoint "http://127.0.0.1:$port/v1" --api-key-env FRAUD_KEY --send prefix \
  --limit 100 --max-tokens 100000 --attempts 1 --out "$tmp/p-refused" --no-progress \
  2> "$tmp/err"; then
  fail "a probe whose every request was refused exited 0"
fi
grep -q "refused each of the first 8 requests with HTTP 400" "$tmp/err" ||
  fail "no early stop: $(cat "$tmp/err")"
grep -q "max_tokens must be" "$tmp/err" || fail "the server's message is missing: $(cat "$tmp/err")"
echo "probe CLI: all checks passed"
