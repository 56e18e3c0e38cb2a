#!/usr/bin/env bash
# The built-in canary lexicon and elicitation suite are exactly what their scripts build from the
# Debian thesaurus (mythes-en-us) and the State of the Union corpus that set-up fetched.
set -euo pipefail
src="$1"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$src"
/usr/bin/python3 scripts/build_lexicon.py --out "$tmp/lexicon.tsv" 2>/dev/null
cmp "$tmp/lexicon.tsv" canary/data/lexicon-v1.tsv
/usr/bin/python3 scripts/build_suite.py --lexicon "$tmp/lexicon.tsv" --out "$tmp/suite.jsonl" 2>/dev/null
cmp "$tmp/suite.jsonl" canary/data/suite-v1.jsonl
echo "lexicon and suite rebuilt byte for byte"
