#!/usr/bin/env python3
"""Plots of the distillation experiment (docs/distillation.md).

Reads the JSON written by studies/distill_study --out and draws:
  - SHARE.png: -log10 p of the provider-layer tests on the student (sampled text over all tuples,
    sampled text at seen windows, white-box) against the watermarked share of its training data,
    with the goal (1e-6) and the radioactivity paper's reported point (p < 1e-5 at 5 %);
  - QUERIES.png: the black-box tests against the number of queries, for every student of the run.
Needs Debian's python3-matplotlib.

  python3 scripts/distillation_plot.py out/distillation/curve.json \
      docs/distillation-share.png docs/distillation-queries.png
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

CAP = 300  # -log10 p beyond this is drawn at the cap (the figures in docs/ give the exact values)


def neglog(log10_p):
    return min(CAP, -log10_p)


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    data = json.load(open(sys.argv[1]))
    rows = [r for r in data["rows"] if "," not in r["label"]]  # no attacks
    shares = [r for r in rows if r["share"] > 0]
    shares.sort(key=lambda r: r["share"])
    control = [r for r in rows if r["share"] == 0]

    fig, ax = plt.subplots(figsize=(7.5, 5), dpi=110)
    x = [100 * r["share"] for r in shares]
    for key, name, style in [
        ("provider_log10_p", "black-box, all tuples", "o-"),
        ("provider_seen_windows_log10_p", "black-box, seen windows", "s-"),
        ("provider_white_box_log10_p", "white-box (student's argmax at seen windows)", "^-"),
    ]:
        ax.plot(x, [neglog(r[key]) for r in shares], style, label=name)
        for r in control:
            ax.axhline(neglog(r[key]), color="grey", lw=0.6, ls=":")
    ax.axhline(6, color="red", lw=1, ls="--", label="goal: p = 1e-6")
    ax.plot([5], [5], "r*", ms=12, label="radioactivity paper: p < 1e-5 at 5 %")
    ax.set_xscale("log")
    ax.set_yscale("symlog", linthresh=10)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("watermarked share of the student's training tokens (%)")
    ax.set_ylabel("-log10 p (capped at %d)" % CAP)
    ax.set_title(
        "Provider layer in an n-gram student (%s training tokens, %s queries)\n"
        "grey dotted: the 0 %% control" % (f"{data['budget']:,}", f"{data['queries']:,}"),
        fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(sys.argv[2])

    fig, ax = plt.subplots(figsize=(9.5, 5), dpi=110)
    colours = plt.cm.viridis([i / max(1, len(rows) - 1) for i in range(len(rows))])
    for colour, r in zip(colours, rows):
        q = [b["queries"] for b in r["by_queries"]]
        ax.plot(q, [neglog(b["provider_seen_windows_log10_p"]) for b in r["by_queries"]], "s-",
                color=colour, label=f"{r['label']}: seen windows")
        ax.plot(q, [neglog(b["provider_log10_p"]) for b in r["by_queries"]], "o:", color=colour,
                label=f"{r['label']}: all tuples")
    ax.axhline(6, color="red", lw=1, ls="--", label="goal: p = 1e-6")
    ax.set_xscale("log")
    ax.set_yscale("symlog", linthresh=10)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("queries (elicitation-suite prefixes, %d tokens each)" % data["tokens"])
    ax.set_ylabel("-log10 p (capped at %d)" % CAP)
    ax.set_title("Black-box tests on the student's sampled answers", fontsize=10)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(sys.argv[3])


if __name__ == "__main__":
    main()
