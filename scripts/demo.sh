#!/usr/bin/env bash
# The main job on built-in defaults: set up, build, train the reference model, then serve
# watermarked answers to a few accounts and detect and attribute each one.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
tm=build/cli/tracemark
[ -f data/refmodel-cl100k-o4.bin ] || "$tm" model train
mkdir -p out/demo/answers
key=out/demo/master.key
[ -f "$key" ] || "$tm" keygen --out "$key"
prompt="Fellow citizens of the Senate and House of Representatives:"
scheme="${TRACEMARK_DEMO_SCHEME:-kgw}"
echo
echo "== serving 1000-token answers to accounts 101, 202 and 303 (scheme $scheme, provider + account"
echo "   layers, canary phrasings)"
for acct in 101 202 303; do
  "$tm" generate --key "$key" --scheme "$scheme" --account "$acct" --prompt "$prompt" --canary \
    --max-tokens 1000 --seed "$acct" > "out/demo/answers/answer-$acct.txt"
  echo "account $acct: $(head -c 110 "out/demo/answers/answer-$acct.txt" | tr '\n' ' ')..."
done
"$tm" generate --no-watermark --prompt "$prompt" --max-tokens 1000 --seed 7 > out/demo/answers/plain.txt
echo
echo "== detection and attribution (1,000 accounts issued)"
for f in answer-101 answer-202 answer-303 plain; do
  echo "-- $f"
  "$tm" detect --key "$key" --scheme "$scheme" --prompt "$prompt" --accounts 1000 \
    "out/demo/answers/$f.txt" | sed 's/^/   /'
done
echo
echo "== a wrong account: answer-101 tested for account 202"
"$tm" detect --key "$key" --scheme "$scheme" --prompt "$prompt" --account 202 \
  out/demo/answers/answer-101.txt | sed 's/^/   /'
echo
echo "== the four answers as a dataset: tracemark scan"
"$tm" scan --key "$key" --scheme "$scheme" --accounts 1000 --no-progress out/demo/answers \
  | sed 's/^/   /'
echo
echo "== canary phrasings: 30 answers harvested by account 404 (elicitation-suite prompts), scanned"
"$tm" canary suite --force --out out/demo/suite.jsonl
harvest=out/demo/harvest.jsonl
: > "$harvest"
for i in $(seq 1 30); do
  prefix=$(sed -n "${i}p" out/demo/suite.jsonl | python3 -c 'import json,sys; print(json.load(sys.stdin)["prefix"])')
  "$tm" generate --key "$key" --scheme "$scheme" --account 404 --canary --prompt "$prefix" \
    --max-tokens 300 --seed "$i" --json \
    | python3 -c 'import json,sys; j=json.load(sys.stdin); print(json.dumps({"prompt": j["prompt"], "completion": j["text"]}))' \
    >> "$harvest"
done
"$tm" scan --key "$key" --scheme "$scheme" --accounts 1000 --no-progress "$harvest" \
  | sed -n '/^canary/,/^$/p' | sed 's/^/   /'
