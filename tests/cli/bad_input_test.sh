#!/usr/bin/env bash
# Bad input everywhere a user can reach it (docs/reliability.md): empty, huge, truncated and
# binary files, invalid UTF-8, wrong formats, wrong and malformed keys, unknown tokenizers and
# vocabularies, out-of-range options, unwritable outputs, tampered reports, a dead endpoint.
#
# Every case must end with exit status 1 or 2 (never 0, never a signal), an error message that
# names the problem (a pattern per case), and no crash text (sanitizer reports, "terminate
# called", "Aborted"). Then the "nothing lost" checks: a failed command leaves an existing
# output as it was, and a dataset with one bad file still gets its good documents scanned.
# Prints one line per case and a count; BAD_INPUT_TABLE=FILE also writes the cases as Markdown.
set -uo pipefail
tm=$(realpath "$1")
data=$(realpath "$2")
tmp=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
export TRACEMARK_DATA_DIR="$data"
cd "$tmp" || exit 1

cases=0
failures=0
table="${BAD_INPUT_TABLE:-}"
[ -n "$table" ] && printf '| case | exit | message |\n|---|---|---|\n' > "$table"

# expect NAME PATTERN COMMAND...: the command must fail cleanly with PATTERN in its stderr.
expect() {
  local name="$1" pattern="$2"
  shift 2
  cases=$((cases + 1))
  "$@" > out.txt 2> err.txt < /dev/null
  local rc=$?
  local msg
  msg=$(head -c 300 err.txt | tr '\n' ' ')
  local why=""
  if [ "$rc" -eq 0 ]; then
    why="exit 0"
  elif [ "$rc" -ne 1 ] && [ "$rc" -ne 2 ]; then
    why="exit $rc"
  elif grep -qE "Sanitizer|runtime error|terminate called|Aborted|Segmentation|core dumped" \
    err.txt out.txt; then
    why="crash text"
  elif ! grep -qiE -- "$pattern" err.txt; then
    why="message lacks /$pattern/"
  fi
  if [ -n "$why" ]; then
    failures=$((failures + 1))
    printf 'FAIL %-34s %s: %s\n' "$name" "$why" "$msg"
  else
    printf 'ok   %-34s exit %d: %s\n' "$name" "$rc" "$(head -c 110 err.txt | head -n 1)"
  fi
  if [ -n "$table" ]; then
    printf '| %s | %s | %s |\n' "$name" "$rc" "$(head -n 1 err.txt | head -c 160 | sed 's/|/\\|/g')" \
      >> "$table"
  fi
}

check() {  # check NAME CONDITION-COMMAND...
  local name="$1"
  shift
  cases=$((cases + 1))
  if "$@" > check.out; then
    printf 'ok   %s\n' "$name"
  else
    failures=$((failures + 1))
    printf 'FAIL %s\n' "$name"
  fi
}

# ---- inputs ----
"$tm" keygen --out k.key > /dev/null 2>&1 || { echo "keygen failed"; exit 1; }
"$tm" keygen --out s.key > /dev/null 2>&1 || exit 1
"$tm" keygen --out other.key > /dev/null 2>&1 || exit 1
"$tm" model train --order 2 --out m.bin > /dev/null 2>&1 || exit 1
for a in 1 2 3; do
  "$tm" generate --key k.key --model m.bin --account "$a" --seed "$a" --max-tokens 120 \
    --prompt "The state of the union" 2> /dev/null |
    /usr/bin/python3 -c 'import json,sys; print(json.dumps({"prompt": "x", "completion": sys.stdin.read()}))'
done > good.jsonl
[ "$(wc -l < good.jsonl)" -eq 3 ] || { echo "could not make the good dataset"; exit 1; }
: > empty.jsonl
mkdir emptydir
printf '{"prompt": "a", "completion": "b' > truncated.jsonl
gzip -c good.jsonl > good.jsonl.gz
head -c $(($(stat -c %s good.jsonl.gz) / 2)) good.jsonl.gz > truncated.jsonl.gz
zstd -q -c good.jsonl > good.jsonl.zst
head -c $(($(stat -c %s good.jsonl.zst) / 2)) good.jsonl.zst > truncated.jsonl.zst
cp good.jsonl notgzip.jsonl.gz
printf '{"prompt": "x", "completion": "bad \xff\xfe utf8"}\n' > badutf8.jsonl
head -c 100000 /dev/urandom > binary.txt
printf 'x\0y' >> binary.txt
echo '[1, 2, 3]' > numbers.json
echo '{"foo": {"bar": [null]}}' > shape.jsonl
# One record of 40 MB: read and refused or scanned, never a crash (the reader bounds a record).
/usr/bin/python3 -c 'print("{\"prompt\": \"x\", \"completion\": \"" + "word " * 8000000 + "\"}")' \
  > huge_record.jsonl
head -c 33 /dev/urandom > k33.key
: > k0.key
head -c 32 /dev/urandom > kopen.key
chmod 600 k33.key k0.key
chmod 644 kopen.key
head -c 5000 /dev/urandom > garbage.model
echo '{"model": 5}' > bad_tokenizer.json
printf 'abc\n12\n' > bad_accounts.txt
pub=$("$tm" report public-key --signing-key s.key 2> /dev/null | tail -n 1)

S=("$tm" scan --key k.key --accounts 10 --no-progress)

# Datasets
expect scan-empty-file "no documents" "${S[@]}" empty.jsonl
expect scan-empty-directory "no documents" "${S[@]}" emptydir
: > empty.txt
printf '   \n\n' > blank.txt
gzip -c empty.txt > empty.txt.gz
echo '[]' > emptylist.json
printf '{"prompt": "x", "completion": ""}\n' > emptycompletion.jsonl
expect scan-empty-text-file "no usable document.*empty" "${S[@]}" empty.txt
expect scan-empty-gzip-text "no usable document.*empty" "${S[@]}" empty.txt.gz
expect scan-empty-json-list "no documents" "${S[@]}" emptylist.json
expect scan-empty-completion "no usable document" "${S[@]}" emptycompletion.jsonl
expect scan-missing-file "no such file" "${S[@]}" nothere.jsonl
expect scan-truncated-jsonl "invalid JSON" "${S[@]}" truncated.jsonl
expect scan-truncated-gzip "truncated gzip" "${S[@]}" truncated.jsonl.gz
expect scan-truncated-zstd "zstd|truncated" "${S[@]}" truncated.jsonl.zst
expect scan-not-gzip "corrupt gzip|gzip" "${S[@]}" notgzip.jsonl.gz
expect scan-binary-file "binary" "${S[@]}" binary.txt
expect scan-json-of-numbers "no usable|record" "${S[@]}" numbers.json
expect scan-json-wrong-shape "no usable|record" "${S[@]}" shape.jsonl
# Keys
expect key-33-bytes "exactly 32 bytes" "$tm" scan --key k33.key --accounts 3 good.jsonl
expect key-empty "exactly 32 bytes" "$tm" scan --key k0.key --accounts 3 good.jsonl
expect key-readable-by-others "chmod 600" "$tm" scan --key kopen.key --accounts 3 good.jsonl
expect key-is-a-directory "not a regular file" "$tm" scan --key emptydir --accounts 3 good.jsonl
expect key-missing "cannot open|no such" "$tm" scan --key nothere.key --accounts 3 good.jsonl
expect key-none "key" "$tm" scan --accounts 3 good.jsonl
expect key-env-not-hex "64 hex digits" env K=zzzz "$tm" scan --key-env K --accounts 3 good.jsonl
expect key-env-unset "not set" "$tm" scan --key-env TRACEMARK_UNSET_VAR --accounts 3 good.jsonl
# Tokenizers and vocabularies
expect tokenizer-unknown "unknown tokenizer" "${S[@]}" --tokenizer bogus good.jsonl
expect tokenizer-file-missing "cannot open" "${S[@]}" --tokenizer hf:nothere.json good.jsonl
expect tokenizer-file-malformed "expected" "${S[@]}" --tokenizer hf:bad_tokenizer.json good.jsonl
# A sanitizer build cannot open SentencePiece beside libprotobuf; it must say so, not abort.
spm_garbage="not a valid SentencePiece"
ldd "$tm" | grep -Eq 'lib(a|t)san' && spm_garbage="sanitizer build"
expect tokenizer-spm-garbage "$spm_garbage" "${S[@]}" --tokenizer spm:garbage.model \
  good.jsonl
expect model-vocabulary-mismatch "vocab|tokenizer" "$tm" generate --key k.key --model m.bin \
  --tokenizer o200k_base --prompt hi --max-tokens 5
expect model-file-garbage "model" "$tm" generate --key k.key --model garbage.model --prompt hi
# Options
expect alpha-zero "alpha" "${S[@]}" --alpha 0 good.jsonl
expect alpha-nan "alpha" "${S[@]}" --alpha nan good.jsonl
expect threads-negative "threads" "${S[@]}" --threads -1 good.jsonl
expect accounts-zero "accounts" "$tm" scan --key k.key --accounts 0 good.jsonl
expect accounts-file-garbage "not an account id" "$tm" scan --key k.key --accounts bad_accounts.txt \
  good.jsonl
expect epochs-reversed "epoch" "${S[@]}" --epochs 3-1 good.jsonl
expect watermark-gamma-2 "gamma" "${S[@]}" --watermark gamma=2 good.jsonl
expect watermark-unknown-parameter "unknown watermark parameter" "${S[@]}" --watermark foo=1 good.jsonl
expect scheme-unknown "unknown scheme" "${S[@]}" --scheme nope good.jsonl
expect lexicon-binary "lexicon" "${S[@]}" --lexicon binary.txt good.jsonl
expect generate-max-tokens-negative "max-tokens|max_tokens" "$tm" generate --key k.key --model m.bin \
  --prompt hi --max-tokens -1
expect generate-temperature-nan "temperature" "$tm" generate --key k.key --model m.bin --prompt hi \
  --temperature nan
expect generate-top-p-2 "top-p|top_p" "$tm" generate --key k.key --model m.bin --prompt hi --top-p 2
expect detect-empty-text "empty|no tokens|nothing" "$tm" detect --key k.key empty.jsonl
expect detect-invalid-utf8 "UTF-8" "$tm" detect --key k.key binary.txt
# Outputs
expect report-directory-missing "No such file" "${S[@]}" --report nodir/r.json --signing-key s.key \
  good.jsonl
expect report-is-a-directory "Is a directory" "${S[@]}" --report emptydir --signing-key s.key \
  good.jsonl
if [ -w /dev/full ]; then
  expect report-disk-full "No space left" "${S[@]}" --report /dev/full --signing-key s.key good.jsonl
  expect stdout-disk-full "standard output" sh -c '"$@" > /dev/full' _ "${S[@]}" good.jsonl
fi
# Reports
"${S[@]}" --report r.json --signing-key s.key good.jsonl > /dev/null 2>&1 ||
  { echo "could not make a report"; exit 1; }
head -c 200 r.json > r_truncated.json
sed 's/"payload": *"./"payload":"A/' r.json > r_tampered.json
expect report-truncated "JSON|envelope|report" "$tm" report verify r_truncated.json --public-key "$pub"
expect report-tampered "signature|payload|base64" "$tm" report verify r_tampered.json --public-key "$pub"
expect report-wrong-public-key "signature|key" "$tm" report verify r.json --public-key "$(printf '%064d' 0)"
expect report-public-key-malformed "64 hex|public key" "$tm" report verify r.json --public-key xyz
expect report-of-binary "JSON|envelope|report" "$tm" report render binary.txt --public-key "$pub"
expect report-recompute-wrong-key "key" "$tm" report verify r.json --public-key "$pub" \
  --inputs good.jsonl --key k33.key
expect report-recompute-another-key "is not the report" "$tm" report verify r.json \
  --public-key "$pub" --inputs good.jsonl --key other.key
expect report-recompute-other-input "input|sha|match" "$tm" report verify r.json --public-key "$pub" \
  --inputs good.jsonl.gz --key k.key
# Endpoints and services
expect probe-dead-endpoint "refused|connect|failed|answer" "$tm" probe --endpoint http://127.0.0.1:1/v1 \
  --out probe1 --attempts 1 --limit 2 --no-progress
expect probe-bad-url "http" "$tm" probe --endpoint ftp://x/v1 --out probe2
expect remote-no-server "connect|unavailable|failed" env TRACEMARK_TOKEN=t "$tm" remote --insecure \
  --server 127.0.0.1:1 --deadline 2 list
expect usage-unknown-flag "^tracemark: error: .*not expected" "$tm" scan --no-such-flag good.jsonl
expect usage-mistyped-command "^tracemark: error: unknown command 'tracemark scna' \(did you mean 'scan'\?\)" \
  "$tm" scna good.jsonl
expect usage-mistyped-subcommand "did you mean 'train'" "$tm" model trian
expect usage-unknown-word "^tracemark: error: unknown command 'tracemark frobnicate';" "$tm" frobnicate
expect detect-accounts-zero "accounts" "$tm" detect --key k.key --accounts 0 good.jsonl
expect detect-alpha-one "alpha" "$tm" detect --key k.key --alpha 1 good.jsonl

expect usage-missing-argument "required" "$tm" detect --key k.key --account
expect serve-tokens-missing "tokens" "$tm" serve --insecure --listen 127.0.0.1:0 --db j.db \
  --key k.key --tokens nothere
expect serve-db-not-sqlite "job store|database" sh -c 'printf "a-token-of-twenty-chars submit a\n" > tok &&
  "$1" serve --insecure --listen 127.0.0.1:0 --db binary.txt --key k.key --tokens tok' _ "$tm"

# The service on a full disk: a file-size limit (prlimit) stands in for it. An upload larger than
# the room left is refused with the reason, the server lives on, and a small scan still runs.
if command -v prlimit > /dev/null; then
  printf 'a-token-of-twenty-chars submit alice\n' > tok_full
  prlimit --fsize=2000000 "$tm" serve --insecure --listen 127.0.0.1:0 --port-file port_full \
    --db full.db --key k.key --tokens tok_full --workers 1 --scan-threads 1 > serve_full.log 2>&1 &
  server=$!
  for _ in $(seq 300); do [ -s port_full ] && break; sleep 0.05; done
  export TRACEMARK_TOKEN=a-token-of-twenty-chars
  R=("$tm" remote --insecure --server "127.0.0.1:$(cat port_full 2> /dev/null)" --deadline 60)
  expect service-upload-disk-full "File too large|No space" "${R[@]}" submit huge_record.jsonl
  check "the server lives on after the refused upload" kill -0 "$server"
  check "a small scan still runs to the end" "${R[@]}" submit --watch good.jsonl
  check "the refused upload left no folder behind" \
    test "$(find full.db.files -maxdepth 1 -name 'u-*' | wc -l)" -eq 1
  kill "$server" 2> /dev/null
  wait "$server" 2> /dev/null
  unset TRACEMARK_TOKEN
fi

# ---- repaired, not dropped ----
"${S[@]}" --json badutf8.jsonl > badutf8.json 2> /dev/null
check "invalid UTF-8 inside a JSONL string is repaired and flagged, not dropped" /usr/bin/python3 -c '
import json
r = json.load(open("badutf8.json"))
assert r["totals"]["documents"] == 1 and r["documents"][0]["repaired_utf8"], r
assert any("invalid UTF-8" in w for w in r["warnings"]), r["warnings"]
'
"${S[@]}" badutf8.jsonl > badutf8.txt 2> /dev/null
check "the text summary says so too" grep -q "^warning: .*invalid UTF-8" badutf8.txt
check "the text summary names the key and the tokenizer" grep -qE "^key [0-9a-f]+ .*tokenizer cl100k_base" \
  badutf8.txt
"$tm" generate --key k.key --model m.bin --temperature 0 --seed 1 --max-tokens 30 --prompt "The state" \
  > greedy1.txt 2> /dev/null
"$tm" generate --key k.key --model m.bin --temperature 0 --seed 2 --max-tokens 30 --prompt "The state" \
  > greedy2.txt 2> /dev/null
check "generate --temperature 0 is greedy (the seed does not matter)" cmp -s greedy1.txt greedy2.txt
check "and it generated something" test -s greedy1.txt

head -n 1 good.jsonl > once.jsonl
cat once.jsonl once.jsonl > twice.jsonl
"${S[@]}" --json --independent-documents twice.jsonl > twice.json 2> /dev/null
check "--independent-documents: two copies of one answer share every tuple, so neither is tested" \
  /usr/bin/python3 -c '
import json
r = json.load(open("twice.json"))
assert [d["tuples_scored"] for d in r["documents"]] == [0, 0], r["documents"]
assert r["provider"]["tuples_scored"] > 0, r["provider"]  # the dataset test keeps them
'
expect family-control-unknown "family control" "${S[@]}" --family-control bonferroni good.jsonl

# ---- nothing lost ----
cp r.json r_before.json
"${S[@]}" --report r.json --signing-key s.key empty.jsonl > /dev/null 2>&1
check "a failed scan leaves the existing report as it was" cmp -s r.json r_before.json
check "no temporary file is left beside it" test "$(ls r.json.tmp* 2> /dev/null | wc -l)" -eq 0
"${S[@]}" --json good.jsonl truncated.jsonl.gz notgzip.jsonl.gz > mixed.json 2> /dev/null
check "a dataset with bad files scans its good documents and names the bad ones" \
  /usr/bin/python3 -c '
import json, sys
r = json.load(open("mixed.json"))
assert r["totals"]["documents"] == 3, r["totals"]
reasons = " ".join(s["reason"] for s in r["skipped"])
assert "gzip" in reasons, reasons
'
"${S[@]}" --json huge_record.jsonl good.jsonl > huge.json 2> huge.err
check "a 40 MB record does not stop the scan" /usr/bin/python3 -c '
import json
r = json.load(open("huge.json"))
assert r["totals"]["documents"] >= 3, r["totals"]
'

echo "$cases cases, $((cases - failures)) as expected, $failures not"
[ "$failures" -eq 0 ]
