#!/usr/bin/env python3
"""Builds the clean corpus of the validity study: real text that no tracemark key touched.

Documents are cut from files of Debian packages and the pinned State of the Union corpus, in four
domains, at line boundaries into pieces of about --doc-bytes bytes, and written as JSONL records
{"id", "domain", "text"} (one file per domain) under --out:

  prose    State of the Union addresses (data/npm/sotu), and README/changelog/copyright files
           under /usr/share/doc (plain or .gz)
  manpages troff sources of the English manual pages under /usr/share/man/man*/ (.gz)
  code     C and C++ headers under /usr/include, Python under /usr/lib/python3*
  licences /usr/share/common-licenses

Files that are not valid UTF-8 or contain NUL bytes are left out; each domain is capped at
--max-per-domain documents and the files are walked in sorted order, so the corpus is the same on
every machine with the same packages. Prints the documents and bytes per domain.

  python3 scripts/validity_corpus.py --out out/validity/corpus
"""

import argparse
import glob
import gzip
import json
import os
import sys


def read_text(path):
    try:
        raw = gzip.open(path).read() if path.endswith(".gz") else open(path, "rb").read()
    except (OSError, EOFError):
        return None
    if b"\0" in raw:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def pieces(text, size):
    """Cuts text at line boundaries into pieces of about `size` bytes (at least size/4)."""
    out, cur, cur_len = [], [], 0
    for line in text.splitlines(keepends=True):
        cur.append(line)
        cur_len += len(line.encode("utf-8"))
        if cur_len >= size:
            out.append("".join(cur))
            cur, cur_len = [], 0
    if cur_len >= size // 4:
        out.append("".join(cur))
    return [p for p in out if p.strip()]


def files(patterns):
    found = set()
    for pattern in patterns:
        found.update(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))
    return sorted(found)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="out/validity/corpus")
    ap.add_argument("--data-dir", default="data")
    ap.add_argument("--doc-bytes", type=int, default=1500)
    ap.add_argument("--max-per-domain", type=int, default=40000)
    args = ap.parse_args()
    domains = {
        "prose": files([f"{args.data_dir}/npm/sotu/data/*.txt",
                        "/usr/share/doc/*/README*", "/usr/share/doc/*/changelog*",
                        "/usr/share/doc/*/NEWS*", "/usr/share/doc/*/copyright"]),
        "manpages": files(["/usr/share/man/man[1-8]/*.gz"]),
        "code": files(["/usr/include/**/*.h", "/usr/include/**/*.hpp",
                       "/usr/lib/python3*/**/*.py"]),
        "licences": files(["/usr/share/common-licenses/*"]),
    }
    os.makedirs(args.out, exist_ok=True)
    total = 0
    for domain, paths in domains.items():
        n = nbytes = 0
        with open(os.path.join(args.out, f"{domain}.jsonl"), "w", encoding="utf-8") as out:
            for path in paths:
                text = read_text(path)
                if text is None:
                    continue
                for i, piece in enumerate(pieces(text, args.doc_bytes)):
                    out.write(json.dumps({"id": f"{path}#{i + 1}", "domain": domain,
                                          "text": piece}, ensure_ascii=False) + "\n")
                    n += 1
                    nbytes += len(piece.encode("utf-8"))
                    if n >= args.max_per_domain:
                        break
                if n >= args.max_per_domain:
                    break
        print(f"{domain}: {n} documents, {nbytes / 1e6:.1f} MB from {len(paths)} files")
        total += n
    print(f"total: {total} documents")
    if total == 0:
        sys.exit("no documents found")


if __name__ == "__main__":
    main()
