#!/usr/bin/env bash
# Regenerates the golden files of tests/tokenizer/testdata from the reference implementations:
# hand-picked edge cases plus short excerpts of the exactness corpus (run
# scripts/tokenizer_exactness.sh first: it fetches the reference packages and builds the corpus).
#
#   scripts/tokenizer_goldens.sh
#
# SentencePiece goldens come from Debian's spm_encode (libsentencepiece itself) on the built-in
# model, for the texts without a newline (spm_encode reads one sentence a line).
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=data/exactness/corpus.jsonl
[ -f "$corpus" ] || { echo "goldens: $corpus missing; run scripts/tokenizer_exactness.sh" >&2; exit 1; }
testdata=tests/tokenizer/testdata
mkdir -p "$testdata"
python3 - "$corpus" "$testdata/golden_texts.json" <<'PY'
import json, sys
corpus, out = sys.argv[1:3]
edge = [
    "", " ", "\n", "\r\n\r\n", "   leading and trailing   ", "tabs\t\tand\vvertical\fspace\n\n\n   \n",
    "Hello, world!", "I'm sure they'll say we've done it; IT'S 'RE 'LL 'VE 'D 'M 'T \u017fs",
    "def f(x):\n    return {'a': [1, 2, 3], \"b\": x ** 2}\n\n\n",
    "numbers 1234567890 3.14159 1e-10 0xDEADBEEF \u0661\u0662\u0663 \u06f4\u06f5\u06f6",
    "\u0421\u044a\u0435\u0448\u044c \u0436\u0435 \u0435\u0449\u0451 \u044d\u0442\u0438\u0445",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3068\u4e2d\u6587\u6587\u672c\uff0c\u4ee5\u53ca\ud55c\uad6d\uc5b4",
    "emoji \U0001F469\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466 \U0001F3F3\ufe0f\u200d\U0001F308 \U0001F1EF\U0001F1F5 \u270c\U0001F3FD",
    "combining: e\u0301 a\u0308 \u212b \u0041\u030a n\u0303 \u0301leading",
    "unicode spaces:\u00a0\u2003\u3000\u2028\u2029\u0085\ufeff\u180e end",
    "special text: <|endoftext|><|im_start|>user<|im_end|> <s></s><unk> <|begin_of_text|>",
    "added tokens: <think>reasoning</think> <tool_call>{}</tool_call> <|fim_prefix|>a<|fim_suffix|>",
    "x" * 300, " " * 200 + "x" + "\n" * 50, "a" * 7 + "aa aaa", "https://example.com/p?q=1&x=%20#f ~/d/f.txt",
]
docs = [json.loads(l) for l in open(corpus, encoding="utf-8") if l.strip()]
snippets = []
step = max(1, len(docs) // 24)
for d in docs[::step][:24]:
    cut = d[:300]
    if "\n" in cut[100:]:
        cut = cut[: 100 + cut[100:].rindex("\n") + 1]
    snippets.append(cut)
json.dump(edge + snippets, open(out, "w", encoding="utf-8"), ensure_ascii=False, indent=0)
print(f"goldens: {len(edge)} edge cases, {len(snippets)} corpus excerpts")
PY
node scripts/tokenizer_goldens.js "$testdata/golden_texts.json" "$testdata"
python3 - "$testdata" <<'PY'
import json, subprocess, sys
testdata = sys.argv[1]
texts = json.load(open(f"{testdata}/golden_texts.json", encoding="utf-8"))
single = [i for i, t in enumerate(texts) if t and not any(c in t for c in "\n\r\v\f\x85\u2028\u2029")]
run = subprocess.run(["spm_encode", "--model=data/spm/sotu-bpe8k.model", "--output_format=id"],
                     input="".join(texts[i] + "\n" for i in single), capture_output=True,
                     text=True, check=True)
lines = run.stdout.split("\n")[: len(single)]
ids = [None] * len(texts)
for i, line in zip(single, lines):
    ids[i] = [int(x) for x in line.split()]
json.dump({"spec": "spm:sotu-bpe8k", "reference": "Debian sentencepiece 0.1.97 spm_encode",
           "override": None, "ids": ids, "decoded": [None] * len(texts)},
          open(f"{testdata}/golden_sotu_bpe8k.json", "w"))
open(f"{testdata}/golden_sotu_bpe8k.json", "a").write("\n")
print(f"goldens: sotu_bpe8k: {len(single)} texts")
PY
du -ch "$testdata"/* | tail -1
