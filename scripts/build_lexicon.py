#!/usr/bin/python3
"""Builds the canary phrasing lexicon canary/data/lexicon-v1.tsv: sets of interchangeable English
phrasings (members), one set a line, used to plant and detect canary choices in generated text.

Sources:
  --curated  canary/data/curated-v1.tsv, the project's hand-written sets (connectives, pronoun
             synonyms, US/UK spelling variants, hyphenation/spacing variants); copied first, in
             file order, members sorted.
  --mythes   /usr/share/mythes/th_en_US_v2.dat (Debian package mythes-en-us, a thesaurus derived
             from Princeton WordNet): candidate synonym sets (kind "synonym").
  --corpus   data/npm/sotu/data/*.txt (State of the Union addresses 1790-2021, public domain, the
             reference model's training corpus): word frequencies for the filters and the coverage
             figure.

Thesaurus sets are kept only when their members can replace each other in virtually any sentence.
A pair of words (A, B) is a candidate when all of the following hold:
  1. both are single lowercase ASCII words of at least 3 letters ([a-z]{3,}), which also leaves out
     the thesaurus's capitalised proper nouns and its multi-word and hyphenated entries;
  2. A and B have the same sense inventory: the same number of sense lines, and for every sense of
     A a sense of B with the same part of speech and the same plain synonyms (annotated entries
     such as "(generic term)", "(similar term)", "(related term)" and "(antonym)" are dropped).
     For monosemous words (one sense line each) this is "same POS and each lists the other"; the
     few polysemous pairs that pass share every one of their senses, so no use of either word has
     a sense the other lacks;
  3. neither word is a regular inflection of another thesaurus headword in a word class that the
     inflection would take (-s/-es/-ies of a noun or verb, -ed/-ing of a verb, -er/-est of an
     adjective or adverb): WordNet has no inflected forms, so "concluded" (adj, one sense) is in
     practice also the past tense of the many-sensed verb "conclude";
  4. both occur at least --min-count (5) times in the corpus (lowercased word counts), their counts
     are within --max-ratio (50:1) of each other, so that neither is archaic or rare next to the
     other, and at least half of each word's occurrences that are not sentence-initial are written
     in lowercase (not a name or title: "pact" as in "Warsaw Pact", "attorney" as in "Attorney
     General");
  5. neither is a function word (STOP_WORDS) nor in EXCLUDED_WORDS, a hand-made list, with reasons,
     of words that are common in a second sense, use or fixed phrase the thesaurus misses, or that
     differ in register (the script fails if an entry no longer removes anything);
  6. both take the same indefinite article (a/an, judged from the spelling), so that "a huge" can
     become "an immense" without breaking the sentence: pairs such as huge|immense and
     exactly|precisely are rejected;
  7. neither is a curated member, nor the first word of a multi-word curated member.
The kept pairs form a graph; sets are its connected components. Because condition 2 is an
equivalence relation, every component is a clique. Components larger than 4 keep their 4 most
frequent members (each still interchangeable with every other); in v1 no component is larger.

The lexicon is validated before and after it is written (format, members, 2-4 members per set,
sorted members, global uniqueness, no member a word-wise prefix of another, and every set other
than a connective set taking a single indefinite article); any violation aborts.

Prints to stderr the sets and members per kind, the filter counts, and how many lexicon-member
occurrences there are per 1,000 corpus words (word-level longest match, case-insensitive).

  /usr/bin/python3 scripts/build_lexicon.py [--mythes ...] [--corpus ...] [--curated ...] [--out ...]
"""

import argparse
import collections
import glob
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KINDS = ("connective", "synonym", "spelling", "hyphenation")
WORD_RE = re.compile(r"[a-z]+(?:['-][a-z]+)*\Z")
# Corpus tokens: words (letters with inner apostrophes/hyphens) and single other non-space chars,
# so that multi-word members only match across plain spaces between words.
TOKEN_RE = re.compile(r"[A-Za-z]+(?:['-][A-Za-z]+)*|[^\sA-Za-z]")
SENTENCE_START_AFTER = frozenset(".!?:;(\"'\u201c\u2014")

# Function words: never thesaurus members (closed classes; many have thesaurus "senses" that are
# really other uses, e.g. any|whatever, but|merely).
STOP_WORDS = frozenset("""
a about above across after afterwards again against all almost alone along already also although
always am among amongst an and another any anybody anyhow anyone anything anyway anywhere are
around as at be became because become becomes been before beforehand behind being below beside
besides between beyond both but by can cannot could did do does doing done down due during each
either else elsewhere enough etc even ever every everybody everyone everything everywhere except
few for former formerly from further had has have having he hence her here hereafter hereby
herein hereupon herewith hers herself him himself his how however if in indeed into is it its
itself just last latter least less many may me meanwhile might mine more moreover most mostly much
must my myself namely neither never nevertheless next no nobody none nonetheless noone nor not
nothing now nowhere of off often on once one only onto or other others otherwise our ours
ourselves out over own per perhaps please quite rather same several shall she should since so
some somebody somehow someone something sometime sometimes somewhere still such than that the
their theirs them themselves then thence there thereafter thereby therefore therein thereupon
therewith these they this those though through throughout thru thus till to together too toward
towards under until unto up upon us very via was we well were what whatever whatsoever when whence
whenever where whereafter whereas whereby wherein whereupon wherever whether which while whilst
whither who whoever whole whom whomever whose why will with within without would yet you your
yours yourself yourselves
""".split())

# Words that pass the automatic thesaurus filters but fail in context (each entry removes the
# set(s) named in parentheses, or one member of it). Every entry here is needed: the script
# fails if an entry no longer matches a candidate pair, so the list cannot go stale.
EXCLUDED_WORDS = {
    "ameliorate": "rare and formal next to improve (ameliorate|improve)",
    "armistice": "a formal agreement ending a war, not any truce (armistice|truce)",
    "brutal": "'brutal honesty', 'a brutal winter' (brutal|cruel)",
    "collectively": "'bargain collectively' (collectively|jointly)",
    "commonly": "'commonly held' is not 'usually held' (commonly|normally|ordinarily|usually)",
    "competency": "countable skill ('core competencies') (competence|competency)",
    "concurrent": "'concurrent resolution' is a fixed term (concurrent|simultaneous)",
    "contributory": "'contributory negligence/pension' (conducive|contributory)",
    "decidedly": "'decidedly' cannot replace 'definitely' in 'we will definitely act'",
    "desperately": "'desperately poor' (desperately|urgently)",
    "dozen": "'a dozen', 'dozens of' (dozen|twelve)",
    "emphatically": "manner adverb: 'emphatically denied' (decidedly|definitely|emphatically)",
    "evidently": "means 'apparently' (evidently|manifestly|obviously)",
    "expeditiously": "fast, not efficient (efficiently|expeditiously)",
    "fiscal": "'fiscal year' is not 'financial year' (financial|fiscal)",
    "fitly": "archaic (appropriately|fitly|fittingly)",
    "fundamentally": "'essentially complete' (essentially|fundamentally)",
    "heartily": "'eat heartily', 'heartily sick of' (cordially|heartily)",
    "immediately": "also spatial: 'immediately adjacent' (forthwith|immediately)",
    "indorse": "archaic spelling (endorse|indorse)",
    "legacy": "wider than bequest: 'the legacy of the war' (bequest|legacy)",
    "liberally": "'liberally construed' (generously|liberally)",
    "manpower": "'military manpower' is not a workforce (manpower|men|workforce)",
    "men": "plural of man (manpower|men|workforce)",
    "munificence": "generosity in giving, not in forgiving (magnanimity|munificence)",
    "normally": "also manner: 'function normally' (commonly|normally|ordinarily|usually)",
    "notorious": "also 'well known' (infamous|notorious)",
    "obviously": "hedge in speech: 'obviously I am biased' (evidently|manifestly|obviously)",
    "offender": "fixed terms: 'first offender', 'sex offender' (offender|wrongdoer)",
    "overwhelmingly": "'voted overwhelmingly' (irresistibly|overwhelmingly)",
    "pecuniary": "'monetary policy' is not 'pecuniary policy' (monetary|pecuniary)",
    "progressively": "'taxed progressively' (increasingly|progressively)",
    "prohibitive": "'prohibitive cost' (prohibitive|prohibitory)",
    "punctually": "on time, not properly: 'duly elected' (duly|punctually)",
    "separately": "'live separately' (individually|separately)",
    "speedily": "promptly, not at a fast rate: 'rapidly growing' (rapidly|speedily)",
    "lieu": "only in 'in lieu of'; stead only in 'in good stead' (lieu|stead)",
    "stupendous": "astonishing, not large (colossal|stupendous)",
    "substantially": "'substantially the same' (considerably|substantially)",
    "surely": "'slowly but surely', 'surely you agree?' (certainly|surely)",
    "systematically": "manner, not frequency (consistently|systematically)",
    "thrive": "'thrive on' has no 'prosper on' (prosper|thrive)",
    "untiring": "'untiring efforts' (hardworking|untiring)",
    "utterly": "negative only: 'utterly essential' (absolutely|utterly)",
    "vast": "'the vast majority' (huge|immense|vast)",
    "vicinity": "'in the vicinity of' (locality|vicinity)",
    "workingman": "archaic (workingman|workman)",
}


def die(msg):
    sys.exit(f"build_lexicon: {msg}")


def read_corpus(corpus_dir):
    files = sorted(glob.glob(os.path.join(corpus_dir, "*.txt")))
    if not files:
        die(f"no *.txt files in {corpus_dir}")
    docs = []
    for path in files:
        text = open(path, encoding="utf-8").read()
        text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u2011", "-")
        docs.append(TOKEN_RE.findall(text))
    return docs


def word_counts(docs):
    """Lowercased word counts, and per word (inner, lower): occurrences not at a sentence start
    (not first in the document, not after . ! ? : ; ( or a quote) and how many of those are in
    lowercase, to tell names from ordinary words."""
    total = collections.Counter()
    inner = collections.Counter()
    lower = collections.Counter()
    for toks in docs:
        prev = "."
        for t in toks:
            if t[0].isalpha():
                lw = t.lower()
                total[lw] += 1
                if prev not in SENTENCE_START_AFTER:
                    inner[lw] += 1
                    if t == lw:
                        lower[lw] += 1
            prev = t
    return total, (inner, lower)


def read_sets(path, what):
    """Parses kind\\tm|m lines after leading # comments. Returns [(kind, [members])]."""
    sets = []
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    in_header = True
    for n, line in enumerate(lines, 1):
        if line.startswith("#"):
            if not in_header:
                die(f"{what}:{n}: comment after the first set")
            continue
        in_header = False
        parts = line.split("\t")
        if len(parts) != 2 or parts[0] not in KINDS:
            die(f"{what}:{n}: expected <kind>\\t<members>: {line!r}")
        members = parts[1].split("|")
        if members != sorted(members):
            die(f"{what}:{n}: members not in byte order: {line!r}")
        sets.append((parts[0], members))
    return sets


def read_mythes(path):
    """Returns {headword: [(pos, frozenset(plain synonyms + headword))]}."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if lines[0].strip() != "UTF-8":
        die(f"{path}: first line is {lines[0]!r}, expected UTF-8")
    th = {}
    i = 1
    while i < len(lines):
        if not lines[i]:
            i += 1
            continue
        head, n = lines[i].rsplit("|", 1)
        n = int(n)
        senses = th.setdefault(head, [])
        for line in lines[i + 1:i + 1 + n]:
            parts = line.split("|")
            plain = {s for s in parts[1:] if "(" not in s}
            senses.append((parts[0], frozenset(plain | {head})))
        i += 1 + n
    return th


def pos_set(th, w):
    return {p for p, _ in th.get(w, ())}


def is_inflection(th, w):
    """True if w is a regular inflection of another headword in a class the inflection implies."""
    cands = []  # (base, classes)
    nv = {"(noun)", "(verb)"}
    if w.endswith("ies"):
        cands.append((w[:-3] + "y", nv))
    if w.endswith("es"):
        cands.append((w[:-2], nv))
    if w.endswith("s") and not w.endswith("ss"):
        cands.append((w[:-1], nv))
    for suf, cls in (("ed", {"(verb)"}), ("ing", {"(verb)"}), ("er", {"(adj)", "(adv)"}),
                     ("est", {"(adj)", "(adv)"})):
        if w.endswith(suf):
            stem = w[:-len(suf)]
            bases = [stem, stem + "e"]
            if len(stem) >= 2 and stem[-1] == stem[-2]:
                bases.append(stem[:-1])
            if stem.endswith("i"):
                bases.append(stem[:-1] + "y")
            cands.extend((b, cls) for b in bases)
    return any(b != w and len(b) >= 2 and pos_set(th, b) & cls for b, cls in cands)


def thesaurus_sets(th, counts, case_counts, taken, first_words, args, stats):
    word_ok = re.compile(r"[a-z]{3,}\Z")
    used_exclusions = set()

    def inventory(w):
        return sorted((p, tuple(sorted(s))) for p, s in th[w])

    def word_reason(w):
        if not word_ok.match(w):
            return "form"
        if w in STOP_WORDS:
            return "stop word"
        if is_inflection(th, w):
            return "inflection"
        if counts[w] < args.min_count:
            return "rare in corpus"
        inner, lower = case_counts
        if inner[w] == 0 or lower[w] * 2 < inner[w]:
            return "mostly capitalised"
        if w in EXCLUDED_WORDS:
            used_exclusions.add(w)
            return "excluded by hand"
        if w in taken or w in first_words:
            return "curated"
        return None

    pairs = set()
    for head in sorted(th):
        if not word_ok.match(head):
            continue
        inv = inventory(head)
        for _, syns in th[head]:
            for other in syns:
                if other <= head or not word_ok.match(other) or other not in th:
                    continue
                if inventory(other) == inv:
                    pairs.add((head, other))
    stats["candidate pairs (same sense inventory)"] = len(pairs)
    kept = []
    rejected = collections.Counter()
    for a, b in sorted(pairs):
        reason = word_reason(a) or word_reason(b)
        if reason is None:
            hi, lo = max(counts[a], counts[b]), min(counts[a], counts[b])
            if hi > args.max_ratio * lo:
                reason = "frequency ratio"
            elif article(a) != article(b):
                reason = "a/an"
        if reason:
            rejected[reason] += 1
            if args.verbose and reason not in ("form",):
                print(f"  reject {a}|{b} ({counts[a]}/{counts[b]}): {reason}", file=sys.stderr)
        else:
            kept.append((a, b))
    stale = sorted(set(EXCLUDED_WORDS) - used_exclusions)
    if stale:
        die(f"EXCLUDED_WORDS entries that no longer match a candidate pair: {stale}")
    for r, n in sorted(rejected.items()):
        stats[f"pairs rejected: {r}"] = n
    # Connected components (union-find).
    parent = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in kept:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    comps = collections.defaultdict(list)
    for w in sorted(parent):
        comps[find(w)].append(w)
    sets = []
    for comp in comps.values():
        if len(comp) > 4:
            stats["components cut to 4 members"] = stats.get("components cut to 4 members", 0) + 1
            comp = sorted(comp, key=lambda w: (-counts[w], w))[:4]
        sets.append(sorted(comp))
    sets.sort()
    return sets


def article(member):
    """The indefinite article the member takes ('a' or 'an'), from its spelling (approximate)."""
    w = member
    if w == "one" or w.startswith(("one ", "one-", "once", "oneself", "eu", "ewe", "union", "unique",
                                    "unit", "univers", "unif", "unilateral", "unison", "usu", "use",
                                    "usa", "uti", "uto", "ura", "ure", "uri", "uro")):
        return "a"
    if w.startswith(("hono", "hour", "heir", "hones")):
        return "an"
    return "an" if w[0] in "aeiou" else "a"


def validate(sets):
    seen = {}
    for i, (kind, members) in enumerate(sets):
        if kind not in KINDS:
            die(f"set {i}: bad kind {kind!r}")
        if not 2 <= len(members) <= 4:
            die(f"set {i}: {len(members)} members")
        if members != sorted(members):
            die(f"set {i}: members not sorted")
        for m in members:
            words = m.split(" ")
            if not 1 <= len(words) <= 3 or not all(WORD_RE.match(w) for w in words):
                die(f"set {i}: bad member {m!r}")
            if m in seen:
                die(f"member {m!r} in sets {seen[m]} and {i}")
            seen[m] = i
        if kind != "connective" and len({article(m) for m in members}) != 1:
            die(f"set {i}: members take different indefinite articles: {members}")
    # No member is a word-wise prefix of another.
    for m in seen:
        words = m.split(" ")
        for k in range(1, len(words)):
            p = " ".join(words[:k])
            if p in seen:
                die(f"member {p!r} (set {seen[p]}) is a prefix of {m!r} (set {seen[m]})")


def count_occurrences(docs, sets):
    """Word-level longest match of members over the token streams; returns (matches, words, per set)."""
    index = {}
    longest = 1
    for i, (_, members) in enumerate(sets):
        for m in members:
            key = tuple(m.split(" "))
            index[key] = i
            longest = max(longest, len(key))
    per_set = collections.Counter()
    words = 0
    for toks in docs:
        low = [t.lower() for t in toks]
        words += sum(1 for t in toks if t[0].isalpha())
        j = 0
        while j < len(low):
            for n in range(min(longest, len(low) - j), 0, -1):
                key = tuple(low[j:j + n])
                if key in index:
                    per_set[index[key]] += 1
                    j += n
                    break
            else:
                j += 1
    return sum(per_set.values()), words, per_set


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mythes", default="/usr/share/mythes/th_en_US_v2.dat")
    ap.add_argument("--corpus", default=os.path.join(ROOT, "data/npm/sotu/data"))
    ap.add_argument("--curated", default=os.path.join(ROOT, "canary/data/curated-v1.tsv"))
    ap.add_argument("--out", default=os.path.join(ROOT, "canary/data/lexicon-v1.tsv"))
    ap.add_argument("--min-count", type=int, default=5)
    ap.add_argument("--max-ratio", type=float, default=50.0)
    ap.add_argument("--verbose", action="store_true", help="list rejected thesaurus pairs")
    args = ap.parse_args()

    docs = read_corpus(args.corpus)
    counts, case_counts = word_counts(docs)
    curated = read_sets(args.curated, args.curated)
    taken = {m for _, ms in curated for m in ms}
    first_words = {m.split(" ")[0] for m in taken if " " in m}
    th = read_mythes(args.mythes)
    stats = {}
    thes = thesaurus_sets(th, counts, case_counts, taken, first_words, args, stats)
    sets = [(k, sorted(ms)) for k, ms in curated] + [("synonym", ms) for ms in thes]
    validate(sets)

    matches, words, per_set = count_occurrences(docs, sets)
    header = [
        "# tracemark canary lexicon v1",
        "# One set of interchangeable phrasings a line: <kind>\\t<member>|<member>[|...]; set id = 0-based",
        "# index among non-comment lines. Built by scripts/build_lexicon.py (docs/canary-lexicon.md).",
        f"# Sets 0-{len(curated) - 1}: canary/data/curated-v1.tsv, hand-written for the project (project licence).",
        f"# Sets {len(curated)}-{len(sets) - 1}: synonym sets from mythes-en-us th_en_US_v2.dat (derived from",
        "# Princeton WordNet; WordNet licence): single words with identical sense inventories (mutual",
        "# synonyms), not inflected forms, not function words, mostly lowercase, same a/an article,",
        f"# each >= {args.min_count} times in the SOTU corpus with counts within {args.max_ratio:g}:1, minus a",
        "# documented hand exclusion list; connected components of at most 4 members.",
        f"# {len(sets)} sets, {sum(len(m) for _, m in sets)} members; "
        f"{1000.0 * matches / words:.1f} member occurrences per 1,000 words of the SOTU corpus.",
    ]
    out = "\n".join(header + [f"{k}\t{'|'.join(ms)}" for k, ms in sets]) + "\n"
    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        f.write(out)

    # Re-read what was written and check it again.
    reread = read_sets(args.out, args.out)
    if reread != sets:
        die("written lexicon does not read back identically")
    validate(reread)

    by_kind = collections.Counter(k for k, _ in sets)
    members_by_kind = collections.Counter()
    occ_by_kind = collections.Counter()
    for i, (k, ms) in enumerate(sets):
        members_by_kind[k] += len(ms)
        occ_by_kind[k] += per_set[i]
    for k in KINDS:
        print(f"{k:12s} {by_kind[k]:4d} sets {members_by_kind[k]:5d} members {occ_by_kind[k]:6d} corpus occurrences",
              file=sys.stderr)
    print(f"total        {len(sets):4d} sets {sum(members_by_kind.values()):5d} members "
          f"({len(curated)} curated sets, {len(thes)} thesaurus sets)", file=sys.stderr)
    for k, v in stats.items():
        print(f"thesaurus: {k}: {v}", file=sys.stderr)
    covered = sum(1 for i in range(len(sets)) if per_set[i])
    print(f"corpus: {words} words, {matches} member occurrences = {1000.0 * matches / words:.2f} per 1,000 words; "
          f"{covered} sets occur at least once", file=sys.stderr)
    print(f"wrote {args.out} ({len(out.encode())} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
