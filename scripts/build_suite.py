#!/usr/bin/python3
"""Builds the canary elicitation suite canary/data/suite-v1.jsonl: prompts whose natural
continuations contain many members of the canary lexicon (canary/data/lexicon-v1.tsv).

Each line is a JSON object with the keys in this order:
  {"id": "v1-0001", "prompt": "...", "prefix": "...", "targets": [set ids]}
  prefix   30-60 words of a State of the Union address (data/npm/sotu/data, public domain) that end
           immediately before an occurrence of a lexicon member, i.e. with the word (and any
           punctuation) before it and no trailing space. It starts at a sentence start where one
           gives 30-60 words, otherwise 45 words back. Whitespace is normalised to single spaces
           and audience reactions such as "(Applause.)" or "[Laughter]" are removed; nothing else
           is changed.
  prompt   an instruction for chat models (one of TEMPLATES, in turn) followed by the prefix.
  targets  sorted set ids: the set of the member right after the prefix and every set with a
           member in the next --window (200) words of the original text.

Occurrences are found as in scripts/build_lexicon.py (word tokens, case-insensitive, longest
match). An occurrence is usable when it is written in lowercase (or capitalised only as the first
word of a sentence, so names like "Department of Labor" are skipped) and preceded by a space and a
word or punctuation mark. Selection is deterministic: sets are visited round-robin by ascending
id, at most --per-set prompts per set; a set's occurrences are taken from different addresses,
spread over the years by repeated halving of the chronological list of addresses, and occurrences
with a sentence-start prefix come first.

Prints to stderr the number of prompts and of lexicon sets covered. The output is validated
before it is written (any violation aborts).

  /usr/bin/python3 scripts/build_suite.py [--lexicon ...] [--corpus ...] [--out ...]
"""

import argparse
import glob
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import build_lexicon  # noqa: E402  (shares the token rules and the lexicon reader/validator)

ROOT = build_lexicon.ROOT
TEMPLATES = (
    "Continue the following passage from a speech in the same style, for about 200 words:\n\n",
    "Here is the beginning of a passage from an address to Congress. Continue it in the same "
    "style for about 200 words, without repeating it:\n\n",
    "Write the next 200 words or so of this speech, keeping its tone and vocabulary:\n\n",
    "The text below breaks off in the middle of a speech. Carry on from where it stops, for "
    "roughly 200 words, in the same voice:\n\n",
    "Continue this excerpt from a formal political address for about 200 words:\n\n",
)
REACTION_RE = re.compile(r"\s*[(\[](?:applause|laughter)[^)\]]{0,40}[)\]]", re.IGNORECASE)
SENTENCE_RE = re.compile(r"[.!?][\"\u201d\u2019')]* (?=[\"\u201c\u2018(]?[A-Z])")
MIN_WORDS, MAX_WORDS, FALLBACK_WORDS = 30, 60, 45


def die(msg):
    sys.exit(f"build_suite: {msg}")


def load_docs(corpus_dir):
    files = sorted(glob.glob(os.path.join(corpus_dir, "*.txt")))
    if not files:
        die(f"no *.txt files in {corpus_dir}")
    docs = []
    for path in files:
        text = open(path, encoding="utf-8").read()
        text = REACTION_RE.sub("", text)
        text = " ".join(text.split())
        docs.append((os.path.basename(path), text))
    return docs


def find_occurrences(text, index, longest):
    """Yields (set id, start char, end char, end token index, tokens) with longest match."""
    norm = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u2011", "-")
    toks = [(m.start(), m.end(), m.group().lower()) for m in build_lexicon.TOKEN_RE.finditer(norm)]
    occ = []
    j = 0
    while j < len(toks):
        for n in range(min(longest, len(toks) - j), 0, -1):
            key = tuple(t[2] for t in toks[j:j + n])
            if key in index:
                occ.append((index[key], toks[j][0], toks[j + n - 1][1], j))
                j += n
                break
        else:
            j += 1
    return occ, toks


def make_prefix(text, start, sentence_starts):
    """Returns (prefix, at_sentence_start) ending just before text[start], or None."""
    if start < 2 or text[start - 1] != " " or text[start - 2] == " ":
        return None
    end = start - 1
    if text[end - 1] in "([{\u201c\u2018\"'\u2014\u2013-":
        return None
    best = None
    for s in reversed(sentence_starts):
        if s >= end:
            continue
        n = len(text[s:end].split(" "))
        if n >= MIN_WORDS:
            if n <= MAX_WORDS:
                best = s
            break
    if best is not None:
        return text[best:end], True
    words = text[:end].split(" ")
    if len(words) < MIN_WORDS:
        return None
    return " ".join(words[-FALLBACK_WORDS:]), False


def usable_case(original, prev_tok):
    if original == original.lower():
        return True
    return (original[0].isupper() and original[1:] == original[1:].lower()
            and prev_tok in (None, ".", "!", "?", ":"))


def spread_order(n):
    """Indices 0..n-1 ordered by repeated halving (1/2, 1/4, 3/4, 1/8, ...), then the rest."""
    order, seen = [], set()
    denom = 2
    while len(order) < n and denom <= 4 * max(n, 1):
        for num in range(1, denom, 2):
            i = num * n // denom
            if i not in seen:
                seen.add(i)
                order.append(i)
        denom *= 2
    order.extend(i for i in range(n) if i not in seen)
    return order


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lexicon", default=os.path.join(ROOT, "canary/data/lexicon-v1.tsv"))
    ap.add_argument("--corpus", default=os.path.join(ROOT, "data/npm/sotu/data"))
    ap.add_argument("--out", default=os.path.join(ROOT, "canary/data/suite-v1.jsonl"))
    ap.add_argument("--per-set", type=int, default=3, help="most prompts per lexicon set")
    ap.add_argument("--window", type=int, default=200, help="words after the prefix whose sets are targets")
    ap.add_argument("--min-prompts", type=int, default=600)
    args = ap.parse_args()

    sets = build_lexicon.read_sets(args.lexicon, args.lexicon)
    build_lexicon.validate(sets)
    index, longest = {}, 1
    for i, (_, members) in enumerate(sets):
        for m in members:
            index[tuple(m.split(" "))] = i
            longest = max(longest, len(m.split(" ")))

    docs = load_docs(args.corpus)
    # candidates[set id] = [(doc index, start, prefix, targets, at sentence start)]
    candidates = [[] for _ in sets]
    for d, (_, text) in enumerate(docs):
        occ, toks = find_occurrences(text, index, longest)
        sentence_starts = [0] + [m.end() for m in SENTENCE_RE.finditer(text)]
        for k, (sid, start, end, tj) in enumerate(occ):
            prev_tok = toks[tj - 1][2] if tj > 0 else None
            if not usable_case(text[start:end], prev_tok):
                continue
            made = make_prefix(text, start, sentence_starts)
            if made is None:
                continue
            prefix, at_start = made
            # Sets with a member in the next `window` words (words = alphabetic tokens).
            limit_tok, words = len(toks), 0
            for t in range(tj, len(toks)):
                if toks[t][2][0].isalpha():
                    words += 1
                    if words > args.window:
                        limit_tok = t
                        break
            limit_char = toks[limit_tok][0] if limit_tok < len(toks) else len(text) + 1
            targets = sorted({s for s, st, _, _ in occ[k:] if st < limit_char})
            candidates[sid].append((d, start, prefix, targets, at_start))

    # Per set: preferred order of its occurrences (sentence-start prefixes first, then spread over
    # addresses, one occurrence per address before any second one).
    picks = []
    for sid, cands in enumerate(candidates):
        ordered = []
        for group in (True, False):
            grp = [c for c in cands if c[4] == group]
            by_doc = {}
            for c in grp:
                by_doc.setdefault(c[0], []).append(c)
            doc_ids = sorted(by_doc)
            rounds = max((len(v) for v in by_doc.values()), default=0)
            for r in range(rounds):
                # r-th occurrence of each address, taken from the middle outwards
                layer = []
                for di in doc_ids:
                    occs = by_doc[di]
                    if r < len(occs):
                        layer.append(occs[spread_order(len(occs))[r]])
                ordered.extend(layer[i] for i in spread_order(len(layer)))
        picks.append(ordered)

    # Round-robin over the sets; a prefix already used (the same passage quoted in two addresses)
    # is passed over.
    records, used = [], set()
    pointer = [0] * len(sets)
    chosen = [[] for _ in sets]
    for r in range(args.per_set):
        for sid in range(len(sets)):
            while pointer[sid] < len(picks[sid]) and picks[sid][pointer[sid]][2] in used:
                pointer[sid] += 1
            if pointer[sid] < len(picks[sid]):
                d, start, prefix, targets, _ = pick = picks[sid][pointer[sid]]
                pointer[sid] += 1
                used.add(prefix)
                chosen[sid].append(pick)
                n = len(records)
                records.append({
                    "id": f"v1-{n + 1:04d}",
                    "prompt": TEMPLATES[n % len(TEMPLATES)] + prefix,
                    "prefix": prefix,
                    "targets": targets,
                    "_set": sid,
                })

    # Validation.
    if len(records) < args.min_prompts:
        die(f"only {len(records)} prompts (< {args.min_prompts})")
    seen_prefixes = set()
    for rec in records:
        p = rec["prefix"]
        n = len(p.split(" "))
        if not MIN_WORDS <= n <= MAX_WORDS:
            die(f"{rec['id']}: prefix of {n} words")
        if p != " ".join(p.split()) or p != p.strip():
            die(f"{rec['id']}: prefix whitespace not normalised")
        if p in seen_prefixes:
            die(f"{rec['id']}: duplicate prefix: {p!r}")
        seen_prefixes.add(p)
        t = rec["targets"]
        if t != sorted(set(t)) or rec["_set"] not in t or not all(0 <= x < len(sets) for x in t):
            die(f"{rec['id']}: bad targets {t}")
        if not rec["prompt"].endswith(p):
            die(f"{rec['id']}: prompt does not end with the prefix")

    lines = []
    for rec in records:
        del rec["_set"]
        lines.append(json.dumps(rec, ensure_ascii=False))
    out = "\n".join(lines) + "\n"
    for line in out.splitlines():
        if list(json.loads(line)) != ["id", "prompt", "prefix", "targets"]:
            die("key order")
    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        f.write(out)

    picks = chosen
    covered = {sid for sid in range(len(sets)) if picks[sid]}
    in_targets = {x for rec in records for x in rec["targets"]}
    at_start = sum(1 for sid in range(len(sets)) for c in picks[sid] if c[4])
    addresses = {c[0] for sid in range(len(sets)) for c in picks[sid]}
    print(f"{len(records)} prompts; {len(covered)} of {len(sets)} lexicon sets covered as the next "
          f"phrase ({len(in_targets)} appear in some prompt's targets); {at_start} prefixes start at a "
          f"sentence start; prompts drawn from {len(addresses)} of {len(docs)} addresses", file=sys.stderr)
    print(f"wrote {args.out} ({len(out.encode())} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
