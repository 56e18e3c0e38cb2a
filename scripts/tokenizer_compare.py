#!/usr/bin/env python3
"""Compares two id files written by tokenizer_exactness / tokenizer_reference.js.

  python3 scripts/tokenizer_compare.py NAME OURS.bin OURS.json REF.bin REF.json CORPUS.jsonl

Prints one Markdown table row: tokenizer, documents, MB, tokens, differing documents, differing
token ids (per document, the positions where the two sequences differ, a missing position
counting as different), ours MB/s, reference MB/s, and the ratio ours/reference. For the first
differing documents it prints, on stderr, where they first differ. Exits 1 if any id differs.
"""
import json
import struct
import sys


def load_ids(path):
    data = open(path, "rb").read()
    docs, pos = [], 0
    while pos < len(data):
        (n,) = struct.unpack_from("<I", data, pos)
        pos += 4
        docs.append(struct.unpack_from(f"<{n}I", data, pos))
        pos += 4 * n
    return docs


def main():
    name, ours_bin, ours_json, ref_bin, ref_json, corpus = sys.argv[1:7]
    ours, ref = load_ids(ours_bin), load_ids(ref_bin)
    ours_fig, ref_fig = json.load(open(ours_json)), json.load(open(ref_json))
    texts = [json.loads(line) for line in open(corpus, encoding="utf-8") if line.strip()]
    if not (len(ours) == len(ref) == len(texts)):
        sys.exit(f"{name}: document counts differ: ours {len(ours)}, reference {len(ref)}, "
                 f"corpus {len(texts)}")
    differing_docs = differing_ids = 0
    for i, (a, b) in enumerate(zip(ours, ref)):
        if a == b:
            continue
        differing_docs += 1
        n = max(len(a), len(b))
        diff = [k for k in range(n) if k >= len(a) or k >= len(b) or a[k] != b[k]]
        differing_ids += len(diff)
        if differing_docs <= 3:
            k = diff[0]
            print(f"{name}: document {i} first differs at token {k}: ours {list(a[k:k + 6])}, "
                  f"reference {list(b[k:k + 6])}; text starts {texts[i][:80]!r}", file=sys.stderr)
    ours_speed, ref_speed = ours_fig["mb_per_s"], ref_fig["mb_per_s"]
    print(f"| {name} | {len(ours)} | {ours_fig['bytes'] / 1e6:.2f} | {ours_fig['tokens']} | "
          f"{differing_docs} | {differing_ids} | {ours_speed:.2f} | {ref_speed:.2f} | "
          f"{ours_speed / ref_speed:.2f} |")
    sys.exit(1 if differing_ids else 0)


if __name__ == "__main__":
    main()
