#!/usr/bin/env bash
# The canary phrasings from the command line, as a user runs them: generate --canary, the suite and
# lexicon commands, scan reporting canary evidence (attribution among issued accounts, cohort), and
# clear failures on bad input.
set -euo pipefail
tm="$1"
data="$2"
tmp=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
echo "work dir: $tmp" >&2
export TRACEMARK_DATA_DIR="$data"
fail() { echo "FAIL: $*" >&2; exit 1; }
json() { /usr/bin/python3 -c "import json,sys; j=json.load(open('$1')); print($2)"; }

# A fixed master secret, so that every run sees the same keys and the same text.
printf '%s' 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef \
  | xxd -r -p > "$tmp/k.key"
chmod 600 "$tmp/k.key"
"$tm" model train --order 2 --out "$tmp/m.bin" >/dev/null 2>&1

# generate --canary reports what the canary did; --no-watermark with --canary is refused.
"$tm" generate --key "$tmp/k.key" --model "$tmp/m.bin" --account 7 --canary \
  --prompt "The Congress" --max-tokens 200 --json > "$tmp/g.json"
[ "$(json "$tmp/g.json" "j['canary']['lexicon']")" = lexicon-v1 ] || fail "lexicon in generate"
[ "$(json "$tmp/g.json" "j['canary']['active_sets'] > 300")" = True ] || fail "active sets"
[ "$(json "$tmp/g.json" "j['canary']['steps_moved'] > 0")" = True ] || fail "no canary step"
if "$tm" generate --key "$tmp/k.key" --model "$tmp/m.bin" --no-watermark --canary --prompt x \
  2> "$tmp/err"; then fail "--canary with --no-watermark accepted"; fi
grep -q "canary" "$tmp/err" || fail "unclear error: $(cat "$tmp/err")"

# The suite: written once, not overwritten without --force.
"$tm" canary suite --out "$tmp/suite.jsonl" 2>/dev/null
[ "$(wc -l < "$tmp/suite.jsonl")" -ge 500 ] || fail "suite too short"
if "$tm" canary suite --out "$tmp/suite.jsonl" 2> "$tmp/err"; then fail "suite overwritten"; fi
grep -q "exists" "$tmp/err" || fail "unclear error: $(cat "$tmp/err")"
"$tm" canary suite --out "$tmp/suite.jsonl" --force 2>/dev/null
"$tm" canary lexicon --json > "$tmp/lex.json"
[ "$(json "$tmp/lex.json" "j['sets']")" -ge 100 ] || fail "lexicon sets"

# Sixty suite answers served to account 31, scanned among 100 accounts.
: > "$tmp/harvest.jsonl"
for i in $(seq 1 60); do
  acct=31
  prefix=$(sed -n "${i}p" "$tmp/suite.jsonl" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["prefix"])')
  "$tm" generate --key "$tmp/k.key" --model "$tmp/m.bin" --account "$acct" --canary \
    --prompt "$prefix" --max-tokens 250 --seed "$i" --json \
    | /usr/bin/python3 -c 'import json,sys; j=json.load(sys.stdin); print(json.dumps({"prompt": j["prompt"], "completion": j["text"]}))' \
    >> "$tmp/harvest.jsonl"
done
printf '31\n62\n' > "$tmp/cohort.txt"
printf '5\n6\n' > "$tmp/innocent.txt"
"$tm" scan --key "$tmp/k.key" --accounts 100 --cohort "$tmp/cohort.txt" --json \
  "$tmp/harvest.jsonl" > "$tmp/scan.json"
[ "$(json "$tmp/scan.json" "j['canary']['attribution']['accounts_tried']")" = 100 ] || fail "accounts tried"
[ "$(json "$tmp/scan.json" "j['canary']['attribution']['top'][0]['account']")" = 31 ] \
  || fail "best canary account is not the one served"
[ "$(json "$tmp/scan.json" "j['canary']['attribution']['corrected_p_value'] < 1e-4")" = True ] \
  || fail "attribution p"
[ "$(json "$tmp/scan.json" "j['canary']['cohort']['p_value'] < 1e-3")" = True ] || fail "cohort p"
[ "$(json "$tmp/scan.json" "'canary' in j['documents'][0]")" = True ] || fail "per-document canary"
"$tm" scan --key "$tmp/k.key" --accounts 100 --cohort "$tmp/innocent.txt" --json \
  "$tmp/harvest.jsonl" > "$tmp/scan2.json"
[ "$(json "$tmp/scan2.json" "j['canary']['cohort']['p_value'] > 1e-3")" = True ] || fail "innocent cohort accused"
"$tm" scan --key "$tmp/k.key" --no-canary --json "$tmp/harvest.jsonl" > "$tmp/scan3.json"
[ "$(json "$tmp/scan3.json" "'canary' in j")" = False ] || fail "--no-canary"

# Bad input: a missing cohort file, a malformed lexicon.
if "$tm" scan --key "$tmp/k.key" --cohort "$tmp/nope.txt" "$tmp/harvest.jsonl" 2> "$tmp/err"; then
  fail "missing cohort accepted"
fi
grep -q "nope.txt" "$tmp/err" || fail "unclear error: $(cat "$tmp/err")"
printf 'synonym\tbig\n' > "$tmp/bad.tsv"
if "$tm" canary lexicon --lexicon "$tmp/bad.tsv" 2> "$tmp/err"; then fail "bad lexicon accepted"; fi
grep -q "line 1" "$tmp/err" || fail "unclear error: $(cat "$tmp/err")"
echo "canary CLI: all checks passed"
