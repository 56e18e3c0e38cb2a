#!/usr/bin/env python3
"""Per-document p-values under ONE key when documents share text (docs/validity.md).

Builds N clean documents that share one header (the first HEADER_BYTES of a licence from
/usr/share/common-licenses) and otherwise differ (a distinct 1,200-byte piece of the State of the
Union corpus each), then scans them under K fresh keys, with and without
--independent-documents (each document tested on the tuples no other document shares). For each
key it counts the documents flagged at p <= 0.01: a valid per-document test flags about 1 %
under every key; dependent ones flag many under some keys and none under others.

    PYTHONPATH=build/python TRACEMARK_DATA_DIR=data python3 scripts/shared_text_study.py \
        --keys 40 --docs 1000

Prints one Markdown table; needs only the built Python package and the set-up data."""

import argparse
import glob
import json
import os
import statistics
import sys
import tempfile

import tracemark


def documents(data_dir, n, header_bytes, licence):
    with open(licence, encoding="utf-8", errors="replace") as f:
        header = f.read()[:header_bytes]
    text = []
    for path in sorted(glob.glob(os.path.join(data_dir, "npm/sotu/data/*.txt"))):
        with open(path, encoding="utf-8", errors="replace") as f:
            text.append(" ".join(f.read().split()))
    text = " ".join(text)
    pieces, at = [], 0  # consecutive, distinct pieces of about 1,200 bytes, cut at spaces
    while at < len(text) and len(pieces) < n:
        end = text.find(" ", at + 1200)
        end = len(text) if end < 0 else end
        pieces.append(text[at:end])
        at = end + 1
    if len(pieces) < n:
        sys.exit(f"the corpus holds only {len(pieces)} pieces; ask for fewer documents")
    return [header + "\n\n" + piece for piece in pieces]


def flagged(master, path, independent):
    options = {"inputs": [path], "canary": False, "independent_documents": independent}
    result = tracemark.scan(master, json.dumps(options))
    p = [d["p_value"] for d in result["documents"]]
    return sum(1 for v in p if float(v) <= 0.01), len(p)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keys", type=int, default=40)
    ap.add_argument("--docs", type=int, default=1000)
    ap.add_argument("--header-bytes", type=int, default=1500)
    ap.add_argument("--licence", default="/usr/share/common-licenses/GPL-3")
    a = ap.parse_args()
    data_dir = os.environ.get("TRACEMARK_DATA_DIR", "data")
    docs = documents(data_dir, a.docs, a.header_bytes, a.licence)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "shared-header.jsonl")
        with open(path, "w") as f:
            for d in docs:
                f.write(json.dumps({"text": d}) + "\n")
        rows = {False: [], True: []}
        for k in range(a.keys):
            key_path = os.path.join(tmp, f"k{k}.key")
            tracemark.new_key_file(key_path)
            master = tracemark.Key.from_file(key_path)
            for independent in (False, True):
                hit, n = flagged(master, path, independent)
                rows[independent].append(hit / n)
            print(f"key {k + 1}/{a.keys}", file=sys.stderr, end="\r")
    print(f"\n{a.docs} documents sharing the first {a.header_bytes} bytes of "
          f"{os.path.basename(a.licence)}, {a.keys} fresh keys; share of documents at p <= 0.01:\n")
    print("| per-document test | mean over keys | median | largest (one key) | keys above 5 % |")
    print("|---|---:|---:|---:|---:|")
    for independent, name in ((False, "all tuples (default)"),
                              (True, "unshared tuples (--independent-documents)")):
        v = rows[independent]
        print(f"| {name} | {statistics.mean(v):.4f} | {statistics.median(v):.4f} | "
              f"{max(v):.4f} | {sum(1 for x in v if x > 0.05)} |")


if __name__ == "__main__":
    main()
