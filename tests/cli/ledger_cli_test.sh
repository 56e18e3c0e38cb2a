#!/usr/bin/env bash
# The serving ledger from the command line (docs/ledger.md): generate --ledger records each answer
# as served (account, key id, the prompt's trailing ids, every response id); ledger import reads a
# provider's logs all-or-nothing, naming FILE:LINE for each bad line; ledger show summarises and
# filters; damage and bad paths are refused with a reason.
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

"$tm" keygen --out "$tmp/k.key" >/dev/null 2>&1
"$tm" model train --order 2 --out "$tmp/m.bin" >/dev/null 2>&1

# Two answers to two accounts: two segments, two records, each what generate said it served.
for a in 7 9; do
  "$tm" generate --key "$tmp/k.key" --model "$tmp/m.bin" --account "$a" --prompt "The Congress" \
    --max-tokens 60 --seed "$a" --ledger "$tmp/ledger" --json > "$tmp/g$a.json"
done
"$tm" ledger show "$tmp/ledger" --json --records 10 > "$tmp/show.json"
[ "$(json "$tmp/show.json" "j['records']")" = 2 ] || fail "records"
[ "$(json "$tmp/show.json" "j['accounts']")" = 2 ] || fail "accounts"
[ "$(json "$tmp/show.json" "len(j['segments'])")" = 2 ] || fail "segments"
[ "$(json "$tmp/show.json" "all(s['finished'] for s in j['segments'])")" = True ] || fail "finished"
/usr/bin/python3 - "$tmp" <<'PY' || fail "the records are not the answers served"
import json, sys
d = sys.argv[1]
show = json.load(open(f"{d}/show.json"))
for rec, a in zip(show["shown"], (7, 9)):
    g = json.load(open(f"{d}/g{a}.json"))
    assert rec["account"] == a, rec
    assert rec["response_ids"] == g["token_ids"], (rec, g["token_ids"])
    assert rec["prompt_ids"] == g["prompt_token_ids"][-3:], rec   # h = 3 trailing prompt ids
    assert rec["epoch_key_id"] == g["key_id"], rec
    assert rec["tokenizer"] == "cl100k_base", rec
PY
"$tm" ledger show "$tmp/ledger" --account 9 --json > "$tmp/nine.json"  # its first 20
[ "$(json "$tmp/nine.json" "[r['account'] for r in j['shown']]")" = "[9]" ] || fail "--account"
"$tm" ledger show "$tmp/ledger" --windows 3 --json > "$tmp/windows.json"
[ "$(json "$tmp/windows.json" "j['windows']['positions'] + j['windows']['positions_skipped'] == j['response_ids']")" = True ] \
  || fail "every response position indexed or skipped"
[ "$(json "$tmp/windows.json" "j['windows']['exclusive_windows'] + j['windows']['shared_windows'] == j['windows']['windows']")" = True ] \
  || fail "windows: $(cat "$tmp/windows.json")"
"$tm" ledger show "$tmp/ledger" > "$tmp/show.txt"
grep -q "2 records, 2 accounts" "$tmp/show.txt" || fail "text summary: $(cat "$tmp/show.txt")"
if "$tm" generate --key "$tmp/k.key" --model "$tmp/m.bin" --no-watermark --prompt x \
  --ledger "$tmp/ledger" 2> "$tmp/err"; then fail "--ledger with --no-watermark accepted"; fi
grep -q "no-watermark" "$tmp/err" || fail "unclear error: $(cat "$tmp/err")"

# Import: good lines (text and ids, anonymous), then a file with bad lines: nothing imported,
# each bad line named; --skip-bad imports the rest.
cat > "$tmp/log.jsonl" <<'JSONL'
{"account": 3, "prompt": "Write a sort.", "completion": "def sort(xs):\n    return sorted(xs)", "time": "2026-12-04T14:00:00Z"}

{"account": null, "response_ids": [1, 2, 3], "time": 1796392801}
{"account": 4, "completion": "ok"}
JSONL
"$tm" ledger import --ledger "$tmp/imported" "$tmp/log.jsonl" 2> "$tmp/imp.txt"
grep -q "imported 3 records" "$tmp/imp.txt" || fail "import: $(cat "$tmp/imp.txt")"
"$tm" ledger show "$tmp/imported" --json > "$tmp/imp.json"
[ "$(json "$tmp/imp.json" "(j['records'], j['accounts'], j['anonymous_records'])")" = "(3, 2, 1)" ] \
  || fail "imported summary"
[ "$(json "$tmp/imp.json" "j['first_time']")" = "2026-12-04T14:00:00.000000Z" ] || fail "time"
printf '%s\n' '{"account": 5, "completion": "fine"}' '{"account": -5, "completion": "x"}' \
  '{"acount": 5, "completion": "typo"}' > "$tmp/bad.jsonl"
if "$tm" ledger import --ledger "$tmp/imported" "$tmp/bad.jsonl" 2> "$tmp/err"; then
  fail "bad lines imported"
fi
grep -q "bad.jsonl:2: \"account\" is not a non-negative integer" "$tmp/err" || fail "line 2: $(cat "$tmp/err")"
grep -q "bad.jsonl:3: unknown field \"acount\"" "$tmp/err" || fail "line 3: $(cat "$tmp/err")"
grep -q "nothing was imported" "$tmp/err" || fail "all-or-nothing: $(cat "$tmp/err")"
[ "$(ls "$tmp/imported" | wc -l)" = 1 ] || fail "a refused import left a segment: $(ls "$tmp/imported")"
"$tm" ledger import --ledger "$tmp/imported" --skip-bad "$tmp/bad.jsonl" 2> "$tmp/err"
grep -q "imported 1 records.*2 bad lines skipped" "$tmp/err" || fail "--skip-bad: $(cat "$tmp/err")"
[ "$("$tm" ledger show "$tmp/imported" --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["records"])')" = 4 ] \
  || fail "records after --skip-bad"

# Compressed logs are read decompressed; a truncated one is refused with nothing imported.
/usr/bin/python3 -c '
import json
for i in range(3000):
    print(json.dumps({"account": i % 7, "completion": "a served answer, number %d" % i}))' \
  | gzip > "$tmp/log.jsonl.gz"
"$tm" ledger import --ledger "$tmp/gz" "$tmp/log.jsonl.gz" 2> "$tmp/err" || fail "gz: $(cat "$tmp/err")"
grep -q "imported 3000 records" "$tmp/err" || fail "gz import: $(cat "$tmp/err")"
head -c 4000 "$tmp/log.jsonl.gz" > "$tmp/cut.jsonl.gz"
if "$tm" ledger import --ledger "$tmp/gz" "$tmp/cut.jsonl.gz" 2> "$tmp/err"; then
  fail "truncated gz imported"
fi
grep -q "cut.jsonl.gz: truncated gzip" "$tmp/err" || fail "truncated gz: $(cat "$tmp/err")"
[ "$(ls "$tmp/gz" | wc -l)" = 1 ] || fail "a refused import left a segment"

# A damaged segment is refused naming the file, or read up to the damage with --skip-damaged.
seg=$(ls "$tmp/ledger"/*.tml | head -n 1)
size=$(stat -c %s "$seg")
printf '\x00\x00\x00\x00\x00\x00\x00\x00' | dd of="$seg" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
if "$tm" ledger show "$tmp/ledger" 2> "$tmp/err" >/dev/null; then fail "damage not noticed"; fi
grep -q "$(basename "$seg")" "$tmp/err" || fail "damage does not name the file: $(cat "$tmp/err")"
"$tm" ledger show "$tmp/ledger" --skip-damaged > "$tmp/skip.txt" || fail "--skip-damaged"
grep -q "1 damaged" "$tmp/skip.txt" || fail "--skip-damaged summary: $(cat "$tmp/skip.txt")"

# model serve --provider --ledger: each answer recorded under the account its API key maps to;
# stopped, the segment is finished; killed with -9, the answers served so far are still there.
printf 'sk-a 31\nsk-b 5\n' > "$tmp/api-keys.txt"
serve() {  # $1: the ledger directory
  rm -f "$tmp/port"
  "$tm" model serve --model "$tmp/m.bin" --port 0 --port-file "$tmp/port" --provider \
    --key "$tmp/k.key" --api-keys "$tmp/api-keys.txt" --ledger "$1" 2>> "$tmp/serve.log" &
  server=$!
  pids+=("$server")
  for _ in $(seq 1 300); do [ -s "$tmp/port" ] && break; sleep 0.1; done
  [ -s "$tmp/port" ] || fail "server did not start: $(cat "$tmp/serve.log")"
}
ask() {  # $1: API key
  /usr/bin/python3 - "$(cat "$tmp/port")" "$1" <<'PY'
import json, sys, urllib.request
body = json.dumps({"max_tokens": 30, "seed": 1,
                   "messages": [{"role": "user", "content": "The Congress"}]}).encode()
req = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/v1/chat/completions", body,
                             {"Authorization": f"Bearer {sys.argv[2]}",
                              "Content-Type": "application/json"})
json.load(urllib.request.urlopen(req, timeout=60))
PY
}
serve "$tmp/served"
ask sk-a || fail "request 1: $(cat "$tmp/serve.log")"
ask sk-b || fail "request 2"
kill -TERM "$server"
wait "$server" || fail "server exit: $(cat "$tmp/serve.log")"
grep -q "ledger: 2 records" "$tmp/serve.log" || fail "serve's ledger line: $(cat "$tmp/serve.log")"
"$tm" ledger show "$tmp/served" --records 5 --json > "$tmp/served.json"
[ "$(json "$tmp/served.json" "sorted(r['account'] for r in j['shown'])")" = "[5, 31]" ] \
  || fail "served accounts"
[ "$(json "$tmp/served.json" "all(s['finished'] for s in j['segments'])")" = True ] || fail "stop"
serve "$tmp/killed"
ask sk-a || fail "request before kill"
kill -9 "$server"
wait "$server" 2>/dev/null || true
"$tm" ledger show "$tmp/killed" --json > "$tmp/killed.json"
[ "$(json "$tmp/killed.json" "(j['records'], j['segments'][0]['finished'])")" = "(1, False)" ] \
  || fail "kill -9: $(cat "$tmp/killed.json")"

# Bad paths and usage.
if "$tm" ledger show "$tmp/none" 2> "$tmp/err"; then fail "missing ledger shown"; fi
grep -q "$tmp/none" "$tmp/err" || fail "missing ledger: $(cat "$tmp/err")"
echo "not a ledger" > "$tmp/junk.tml"
if "$tm" ledger show "$tmp/junk.tml" 2> "$tmp/err"; then fail "junk shown"; fi
grep -q "not a tracemark ledger segment" "$tmp/err" || fail "junk: $(cat "$tmp/err")"
if "$tm" ledger import --ledger "$tmp/x" "$tmp/nofile.jsonl" 2> "$tmp/err"; then
  fail "missing input imported"
fi
grep -q "nofile.jsonl" "$tmp/err" || fail "missing input: $(cat "$tmp/err")"
[ ! -e "$tmp/x" ] || fail "a refused import left the ledger directory it made"
echo PASS
