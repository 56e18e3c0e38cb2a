#!/usr/bin/env python3
"""QQ plot of the validity study's p-values against the uniform distribution (log scales).

Reads the JSON written by build/studies/validity_study --out and draws, for each test, the sorted
p-values against their expected uniform quantiles (i / (n + 1)); a valid test lies on or above the
diagonal. Needs Debian's python3-matplotlib (scripts/validity_study.sh installs it).

  python3 scripts/validity_plot.py out/validity/pvalues.json docs/validity-qq.png
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    data = json.load(open(sys.argv[1]))
    fig, ax = plt.subplots(figsize=(7, 7), dpi=110)
    colours = plt.cm.tab20.colors
    for k, test in enumerate(data["tests"]):
        p = sorted(max(v, 1e-300) for v in test["p_values"])
        n = len(p)
        expected = [(i + 1) / (n + 1) for i in range(n)]
        style = "--" if "z-test" in test["test"] else "-"
        ax.loglog(expected, p, style, linewidth=1.4, label=test["test"],
                  color=colours[(2 * k) % 20 if k < 10 else (2 * k + 1) % 20])
    lo = 1.0 / (data["documents"] + 1)
    ax.loglog([lo, 1], [lo, 1], color="black", linewidth=0.8, label="uniform (valid on or above)")
    ax.set_xlim(lo, 1)
    ax.set_ylim(1e-12, 1)
    ax.set_xlabel("expected uniform quantile")
    ax.set_ylabel("observed p-value")
    ax.set_title(f"p-values on {data['documents']:,} clean documents (no key touched them)")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    fig.savefig(sys.argv[2])
    print(f"wrote {sys.argv[2]}")


if __name__ == "__main__":
    main()
