#!/usr/bin/env bash
# The service as a user meets it through `tracemark remote` (docs/service.md): an empty list says
# so; a spec no scan accepts is refused before any upload byte is stored; a failed scan makes
# `remote watch` and `remote submit --watch` exit 1 with its reason said once; a succeeded
# scan's report names the inputs as they were uploaded, beside their digests.
set -uo pipefail
tm=$(realpath "$1")
data=$(realpath "$2")
tmp=$(mktemp -d)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2> /dev/null && wait "$server" 2> /dev/null
  [ -n "${KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
export TRACEMARK_DATA_DIR="$data"
cd "$tmp" || exit 1
fail() { echo "FAIL: $*"; exit 1; }

"$tm" keygen --out k.key > /dev/null && "$tm" keygen --out s.key > /dev/null || fail "keygen"
printf 'a-token-of-twenty-chars submit alice\n' > tokens
"$tm" serve --insecure --listen 127.0.0.1:0 --port-file port --db jobs.db --key k.key \
  --tokens tokens --signing-key s.key --workers 1 --scan-threads 1 > serve.log 2>&1 &
server=$!
for _ in $(seq 300); do [ -s port ] && break; sleep 0.05; done
[ -s port ] || fail "the server did not start: $(cat serve.log)"
export TRACEMARK_TOKEN=a-token-of-twenty-chars
R=("$tm" remote --insecure --server "127.0.0.1:$(cat port)" --deadline 60)

"${R[@]}" list > list.out 2>&1 || fail "remote list: $(cat list.out)"
grep -q "^no scans" list.out || fail "an empty list says nothing: $(cat list.out)"

# Specs no scan accepts: refused before the upload, nothing stored.
echo "Some ordinary text to upload." > doc.txt
for spec in "--watermark gama=1" "--tokenizer hf:nope" "--scheme nope" "--alpha 2" \
  "--family-control nope"; do
  # shellcheck disable=SC2086
  if "${R[@]}" submit $spec doc.txt > sub.out 2>&1; then fail "submit $spec was queued"; fi
  grep -q "^tracemark: error: " sub.out || fail "submit $spec: $(cat sub.out)"
  grep -q "queued" sub.out && fail "submit $spec says queued: $(cat sub.out)"
done
[ "$(find jobs.db.files -mindepth 1 -maxdepth 1 2> /dev/null | wc -l)" -eq 0 ] ||
  fail "a refused spec left uploads behind: $(ls jobs.db.files)"

# A scan that fails (an empty file: no usable document).
: > empty.txt
if "${R[@]}" submit --watch empty.txt > watch1.out 2>&1; then fail "submit --watch of a failed scan exited 0"; fi
[ "$(grep -c "no usable document" watch1.out)" -eq 1 ] ||
  fail "the failure is not said exactly once: $(cat watch1.out)"
id=$("${R[@]}" list | awk '/failed/ {print $1; exit}')
[ -n "$id" ] || fail "no failed scan listed"
if "${R[@]}" watch "$id" > watch2.out 2>&1; then fail "remote watch of a failed scan exited 0"; fi
[ "$(grep -c "no usable document" watch2.out)" -eq 1 ] ||
  fail "remote watch: the failure is not said exactly once: $(cat watch2.out)"

# A scan that succeeds: its report names the upload, beside the digest and the stored path.
"$tm" model train --order 2 --out m.bin > /dev/null 2>&1 || fail "model train"
"$tm" generate --key k.key --model m.bin --account 3 --max-tokens 1000 --prompt "The state" \
  > answers.txt 2> /dev/null || fail "generate"
"${R[@]}" submit --watch --accounts 10 answers.txt > watch3.out 2>&1 || fail "a good scan: $(cat watch3.out)"
grep -q "succeeded" watch3.out || fail "not succeeded: $(cat watch3.out)"
grep -Eq "^scan-[0-9a-f]+  succeeded  1 documents, [0-9]+ of $(stat -c %s answers.txt) bytes$" watch3.out ||
  fail "the watch lines do not show the bytes read: $(cat watch3.out)"
id=$("${R[@]}" list | awk '/succeeded/ {print $1; exit}')
"${R[@]}" report "$id" --out r.json 2> /dev/null || fail "remote report"
pub=$("$tm" report public-key --signing-key s.key | tail -n 1)
"$tm" report render r.json --public-key "$pub" > r.md || fail "render"
grep -q "| answers.txt | $(stat -c %s answers.txt) | \`$(sha256sum answers.txt | cut -d' ' -f1)\` | .*jobs.db.files/" r.md ||
  fail "the rendering does not name the upload beside its digest: $(grep -A3 '| file' r.md)"
# The scan options of docs/cli.md reach the service too.
"${R[@]}" submit --watch --accounts 10 --independent-documents --family-control fdr answers.txt \
  > watch4.out 2>&1 || fail "an independent-documents scan: $(cat watch4.out)"
id4=$(awk '/succeeded/ {print $1; exit}' watch4.out)
"${R[@]}" get "$id4" --result > get4.out 2>&1 || fail "remote get --result: $(cat get4.out)"
grep -q "Benjamini-Hochberg" get4.out || fail "fdr control not applied: $(head -c 600 get4.out)"
grep -q "the tuples no other document of the scan shares" get4.out || fail "not independent"
# The rendering: an unsigned rendering of this very envelope, its attributed documents, and which
# error rates are exact and which bounds.
grep -q "unsigned rendering of the signed envelope whose SHA-256 is \`$(sha256sum r.json | cut -d' ' -f1)\`, verified with the public key \`$pub\`" r.md ||
  fail "the rendering does not name its envelope: $(head -8 r.md)"
grep -q "^Documents attributed to an account (1)" r.md && grep -q "| 3 | " r.md ||
  fail "the attributed document is not listed: $(grep -A4 'attributed' r.md)"
grep -q "\*\*Exact:\*\* the provider-watermark p-values" r.md && grep -q "Chernoff upper bounds" r.md ||
  fail "the error rates do not say which figures are bounds"
"$tm" report verify r.json --public-key "$pub" > verify.out || fail "verify"
grep -q "dataset provider p-value: [0-9]" verify.out || fail "p-value quoted: $(cat verify.out)"
# A TLS handshake that fails (the client trusts another CA): one line with the reason, no raw
# gRPC log lines ("E1204 01:41:01.37 ssl_transport_security.cc:1934] ...") on either side.
if command -v openssl > /dev/null; then
  openssl req -x509 -newkey rsa:2048 -nodes -keyout tls.key -out tls.crt -days 1 \
    -subj /CN=localhost > /dev/null 2>&1 || fail "openssl could not make a certificate"
  "$tm" serve --listen 127.0.0.1:0 --port-file tls_port --db tls.db --key k.key --tokens tokens \
    --tls-cert tls.crt --tls-key tls.key > tls_serve.log 2>&1 &
  tls_server=$!
  for _ in $(seq 300); do [ -s tls_port ] && break; sleep 0.05; done
  if "$tm" remote --server "127.0.0.1:$(cat tls_port)" --tls-ca /etc/ssl/certs/ca-certificates.crt \
    --deadline 5 list > tls.out 2>&1; then
    fail "a client trusting another CA connected"
  fi
  kill "$tls_server" 2> /dev/null
  wait "$tls_server" 2> /dev/null
  [ "$(wc -l < tls.out)" -eq 1 ] && grep -q "^tracemark: error: .*handshake" tls.out ||
    fail "TLS failure not said in one line: $(cat tls.out)"
  grep -Eq "^[EWID][0-9]{4} " tls.out tls_serve.log && fail "raw gRPC log lines: $(cat tls.out tls_serve.log)"
fi
echo "service CLI: all checks passed"
