#!/usr/bin/env bash
# No key bytes anywhere a user or an attacker can read: a recognisable master secret and signing
# seed are planted, every command that holds them is run (generate, detect, scan with a signed
# report, report verify recomputing it, the service with submit / get / report / keys), including
# their error paths, and every output, log, report and job-store file is searched for the
# secrets' bytes (raw, hex in both cases, base64). The service must also run with core dumps off.
set -euo pipefail
tm="$1"
data="$2"
tmp=$(mktemp -d)
out="$tmp/out"
mkdir -p "$out"
server=""
cleanup() {
  [ -n "$server" ] && kill -9 "$server" 2>/dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export TRACEMARK_DATA_DIR="$data"

master='TRACEMARK-PLANTED-MASTER-SECRET!'   # 32 bytes
signing='TRACEMARK-PLANTED-SIGNING-SEED!!'  # 32 bytes
printf '%s' "$master" > "$tmp/k.key"
printf '%s' "$signing" > "$tmp/s.key"
chmod 600 "$tmp/k.key" "$tmp/s.key"
master_hex=$(printf '%s' "$master" | xxd -p -c 64)

run() {  # run NAME COMMAND...: keeps stdout and stderr; the exit status is not checked here
  local name="$1.$RANDOM"
  shift
  "$@" > "$out/$name.out" 2> "$out/$name.err" || true
}
run_ok() {  # run_ok NAME COMMAND...: the same, for a command that must succeed (so that it ran)
  local name="$1.$RANDOM"
  shift
  "$@" > "$out/$name.out" 2> "$out/$name.err" || fail "$name exited $?: $(head -c 300 "$out/$name.err")"
}
"$tm" model train --order 2 --out "$tmp/m.bin" > /dev/null 2>&1 || fail "model train"
for a in 3 3 7; do
  "$tm" generate --key "$tmp/k.key" --model "$tmp/m.bin" --account "$a" --seed "$RANDOM" \
    --prompt "The state of the union" --max-tokens 300 2> "$out/generate.err" |
    /usr/bin/python3 -c 'import json,sys; print(json.dumps({"prompt": "x", "completion": sys.stdin.read()}))'
done > "$tmp/h.jsonl"
run_ok tm_detect "$tm" detect --key "$tmp/k.key" --accounts 100 "$tmp/h.jsonl"
TRACEMARK_TEST_KEY="$master_hex" run_ok tm_detect_env "$tm" detect --key-env TRACEMARK_TEST_KEY \
  --accounts 100 "$tmp/h.jsonl"
run_ok tm_scan "$tm" scan --key "$tmp/k.key" --accounts 100 --json --no-progress \
  --report "$tmp/report.json" --signing-key "$tmp/s.key" "$tmp/h.jsonl"
[ -s "$tmp/report.json" ] || fail "no report written"
"$tm" report public-key --signing-key "$tmp/s.key" > "$tmp/s.pub" 2> "$out/pub.err"
run_ok tm_verify "$tm" report verify "$tmp/report.json" --public-key "$tmp/s.pub" \
  --inputs "$tmp/h.jsonl" --key "$tmp/k.key" --json
grep -q '"identical": true' "$out"/tm_verify.*.out || fail "the report did not recompute"
run_ok tm_render "$tm" report render "$tmp/report.json" --public-key "$tmp/s.pub" --format html

# Error paths that hold or read the keys.
chmod 644 "$tmp/k.key"
run tm_mode "$tm" scan --key "$tmp/k.key" --accounts 100 --no-progress "$tmp/h.jsonl"
chmod 600 "$tmp/k.key"
printf '%sX' "$master" > "$tmp/long.key"; chmod 600 "$tmp/long.key"
run tm_size "$tm" detect --key "$tmp/long.key" "$tmp/h.jsonl"
TRACEMARK_TEST_KEY="${master_hex}zz" run tm_env "$tm" detect --key-env TRACEMARK_TEST_KEY "$tmp/h.jsonl"
"$tm" keygen --out "$tmp/other.key" > /dev/null 2>&1
run tm_other "$tm" report verify "$tmp/report.json" --public-key "$tmp/s.pub" \
  --inputs "$tmp/h.jsonl" --key "$tmp/other.key"
run tm_badin "$tm" scan --key "$tmp/k.key" --accounts 100 --no-progress "$tmp/missing.jsonl"

# The service.
printf 'leak-test-token-0123456789 admin t\n' > "$tmp/tokens"
"$tm" serve --insecure --listen 127.0.0.1:0 --port-file "$tmp/port" --db "$tmp/jobs.db" \
  --key "$tmp/k.key" --signing-key "$tmp/s.key" --tokens "$tmp/tokens" \
  > "$out/serve.out" 2> "$out/serve.err" &
server=$!
for _ in $(seq 1 100); do [ -s "$tmp/port" ] && break; sleep 0.05; done
[ -s "$tmp/port" ] || fail "the server did not start: $(cat "$out/serve.err")"
grep -E '^Max core file size +0 +0 ' "/proc/$server/limits" > /dev/null ||
  fail "core dumps are not off in the service: $(grep 'core' "/proc/$server/limits")"
export TRACEMARK_TOKEN=leak-test-token-0123456789
r=("$tm" remote --insecure --server "127.0.0.1:$(cat "$tmp/port")")
"${r[@]}" --json submit "$tmp/h.jsonl" --accounts 100 --watch > "$out/submit.out" 2>&1 ||
  fail "submit: $(cat "$out/submit.out")"
id=$(/usr/bin/python3 -c "import json; print(json.load(open('$out/submit.out'))['id'])")
run_ok rm_get "${r[@]}" get "$id" --result
for f in envelope markdown html; do run rm_report "${r[@]}" report "$id" --format "$f"; done
run_ok rm_keys "${r[@]}" --json keys
run_ok rm_list "${r[@]}" list --all
run rm_bad "${r[@]}" submit "$tmp/missing.jsonl"
TRACEMARK_TOKEN=wrong-token-0123456789 run rm_auth "${r[@]}" keys
kill -TERM "$server"; wait "$server" 2>/dev/null || true; server=""

# Search everything for the secrets.
/usr/bin/python3 - "$tmp" "$master" "$signing" <<'PY' || fail "a secret was found (above)"
import base64, os, sys
root, secrets = sys.argv[1], [s.encode() for s in sys.argv[2:]]
forms = []
for s in secrets:
    forms += [s, s.hex().encode(), s.hex().upper().encode(), base64.b64encode(s),
              base64.urlsafe_b64encode(s).rstrip(b"=")]
files = found = 0
for d, _, names in os.walk(root):
    for n in names:
        p = os.path.join(d, n)
        if p.endswith((".key", "h.jsonl", "m.bin")) or n == "tokens":
            continue  # the key files themselves, and inputs that contain no key
        data = open(p, "rb").read()
        files += 1
        for f in forms:
            if f in data:
                found += 1
                print(f"secret bytes ({f[:12]!r}...) in {p}", file=sys.stderr)
print(f"{files} files searched, {found} secrets found")
sys.exit(1 if found or files < 20 else 0)
PY
echo "1 passed, 0 failed"
