#!/usr/bin/env bash
# The verifier service (tracemark serve) driven by a gRPC client in another language: Python's
# grpcio (Debian's python3-grpcio), with message and stub modules generated at test time from
# proto/tracemark/v1/verifier.proto by protoc and grpc_python_plugin into a temporary directory.
# python_client_test.py does the calls (health, tokens and roles, keys, a streamed upload, an
# idempotent resubmission, a watch to the end, reports, listings, cancels, bad uploads, a
# deadline); this script makes the keys and a small watermarked dataset, runs the server, checks
# the report the client fetched with `tracemark report verify`, and prints the summary line.
#
#   python_client_test.sh TRACEMARK DATA_DIR PROTO_DIR     (exit 77: no grpc for Python: skipped)
set -euo pipefail
tm="$1"
data="$2"
proto="$3"
py=/usr/bin/python3  # Debian's python, which has python3-grpcio; not a pyenv python from PATH
here=$(cd "$(dirname "$0")" && pwd)
fail() { echo "FAIL: $*" >&2; exit 1; }

if ! "$py" -c 'import grpc, google.protobuf' 2>/dev/null; then
  echo "SKIPPED: $py cannot import grpc and google.protobuf (apt-get install python3-grpcio" \
    "python3-protobuf)"
  exit 77
fi
protoc=$(command -v protoc) || fail "protoc is not on PATH (apt-get install protobuf-compiler)"
plugin=$(command -v grpc_python_plugin) ||
  fail "grpc_python_plugin is not on PATH (apt-get install protobuf-compiler-grpc)"

tmp=$(mktemp -d)
server=""
cleanup() {
  if [ -n "$server" ]; then
    kill -TERM "$server" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$server" 2>/dev/null || true
  fi
  [ -n "${KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
echo "work dir: $tmp" >&2

mkdir "$tmp/gen"
"$protoc" --python_out="$tmp/gen" --grpc_out="$tmp/gen" --plugin=protoc-gen-grpc="$plugin" \
  -I "$proto" tracemark/v1/verifier.proto ||
  fail "protoc could not generate the Python modules from $proto/tracemark/v1/verifier.proto"

"$tm" keygen --out "$tmp/k.key" >/dev/null 2>&1 || fail "keygen failed"
"$tm" keygen --out "$tmp/s.key" >/dev/null 2>&1 || fail "keygen (signing key) failed"
printf '%s\n' 'tok-submit-0123456789 submit alice' 'tok-reader-0123456789 read bob' \
  'tok-admin-01234567890 admin root' > "$tmp/tokens"

# A small reference model of its own (CI's set-up does not train the demo's).
"$tm" model train --order 2 --out "$tmp/m.bin" --data-dir "$data" > /dev/null 2>&1 ||
  fail "could not train a reference model"

# The dataset: three documents served to account 3, one to account 7, as JSONL. 500 tokens each,
# so that account 3 comes first whatever the (random) key: at 300, about one key in twelve had
# account 7 first.
gen() {  # ACCOUNT SEED PROMPT
  "$tm" generate --key "$tmp/k.key" --model "$tmp/m.bin" --account "$1" --seed "$2" \
    --prompt "$3" --max-tokens 500 --data-dir "$data" 2>> "$tmp/generate.log" |
    "$py" -c 'import json,sys; print(json.dumps({"prompt": sys.argv[1], "completion": sys.stdin.read()}))' "$3" \
    >> "$tmp/harvest.jsonl" || fail "generate failed: $(cat "$tmp/generate.log")"
}
gen 3 5 "The state of the union"
gen 3 6 "A history of the railways"
gen 7 7 "How bread is made"
gen 3 8 "Notes on the weather"
# A long dataset for the deadline and cancel checks: the same documents 1200 times over (12 MB),
# which the server scans under 16 epochs, 10 to 30 s of one scan thread's work (it is cancelled
# about a second after it starts).
"$py" -c 'import sys; d = open(sys.argv[1], "rb").read(); open(sys.argv[2], "wb").write(d * 1200)' \
  "$tmp/harvest.jsonl" "$tmp/long.jsonl"

"$tm" serve --insecure --listen 127.0.0.1:0 --port-file "$tmp/port" --db "$tmp/jobs.db" \
  --key "$tmp/k.key" --tokens "$tmp/tokens" --signing-key "$tmp/s.key" --data-dir "$data" \
  --epochs 0-15 --scan-threads 1 2> "$tmp/serve.log" &
server=$!
for _ in $(seq 1 300); do [ -s "$tmp/port" ] && break; sleep 0.1; done
[ -s "$tmp/port" ] || fail "the server did not start: $(cat "$tmp/serve.log")"
port=$(cat "$tmp/port")

rc=0
"$py" "$here/python_client_test.py" --port "$port" --generated "$tmp/gen" --key "$tmp/k.key" \
  --harvest "$tmp/harvest.jsonl" --majority-account 3 --out "$tmp" \
  --long-input "$tmp/long.jsonl" 2>&1 | tee "$tmp/checks.log" || rc=$?

# The envelope the client fetched: its signature, its inputs, and its result recomputed.
verified=1
if [ -s "$tmp/report.json" ]; then
  if "$tm" report verify "$tmp/report.json" --public-key "$(cat "$tmp/public-key")" \
      --inputs "$tmp/harvest.jsonl" --key "$tmp/k.key" --data-dir "$data" \
      > "$tmp/verify.out" 2>&1 && grep -q "identical result" "$tmp/verify.out"; then
    echo "ok - tracemark report verify: the fetched report recomputes to the identical result" |
      tee -a "$tmp/checks.log"
  else
    verified=0
  fi
else
  verified=0
  echo "(no report was fetched)" > "$tmp/verify.out"
fi
if [ "$verified" = 0 ]; then
  echo "FAIL - tracemark report verify: $(cat "$tmp/verify.out")" | tee -a "$tmp/checks.log"
fi

# With --reflection, a second server lists its services to a reflection client (the first, started
# without it, answered UNIMPLEMENTED above).
kill -TERM "$server" 2>/dev/null || true
wait "$server" 2>/dev/null || true
rm -f "$tmp/port"
"$tm" serve --insecure --reflection --listen 127.0.0.1:0 --port-file "$tmp/port" \
  --db "$tmp/jobs2.db" --key "$tmp/k.key" --tokens "$tmp/tokens" --data-dir "$data" \
  2>> "$tmp/serve.log" &
server=$!
for _ in $(seq 1 300); do [ -s "$tmp/port" ] && break; sleep 0.1; done
if "$py" - "$(cat "$tmp/port" 2>/dev/null)" <<'PY' >> "$tmp/checks.log" 2>&1; then
import grpc, sys
channel = grpc.insecure_channel(f"127.0.0.1:{sys.argv[1]}")
reflect = channel.stream_stream(
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    request_serializer=lambda b: b, response_deserializer=bytes)
replies = list(reflect(iter([b"\x3a\x00"]), timeout=10))  # list_services
assert any(b"tracemark.v1.Verifier" in r for r in replies), replies
PY
  echo "ok - with --reflection the server lists tracemark.v1.Verifier" | tee -a "$tmp/checks.log"
else
  echo "FAIL - with --reflection the server does not list tracemark.v1.Verifier" |
    tee -a "$tmp/checks.log"
fi

passed=$(grep -c '^ok - ' "$tmp/checks.log" || true)
failed=$(grep -c '^FAIL - ' "$tmp/checks.log" || true)
if [ "$rc" != 0 ] && [ "$failed" = 0 ]; then failed=1; fi  # the client died without saying why
if [ "$failed" != 0 ]; then echo "server log:" >&2; cat "$tmp/serve.log" >&2; fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
