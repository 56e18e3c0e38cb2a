"""Per-token overhead of tracemark.hf.TracemarkLogitsProcessor in a Hugging Face generate-style
PyTorch decode loop on CPU, as a ratio to the same loop without it, and the time spent inside the
processor itself, measured directly (docs/performance.md).

The model is tests/python/tiny_lm.TinyLM with a key/value cache over cl100k_base's 100,277 ids;
the loops with and without the processor run alternately in one process, on the same prompts and
seeds, and the median of the repetitions is reported. Usage:

    PYTHONPATH=build/python /usr/bin/python3 studies/hf_overhead.py [--reps 5] [--tokens 64]
"""

import argparse
import os
import statistics
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "python"))

import tracemark  # noqa: E402
from tiny_lm import TinyLM, generate  # noqa: E402
from tracemark.hf import TracemarkLogitsProcessor  # noqa: E402


class Timed:
    """Wraps a processor and adds up the time spent inside it."""

    def __init__(self, proc):
        self.proc, self.seconds, self.calls = proc, 0.0, 0

    def __call__(self, input_ids, scores):
        t0 = time.perf_counter()
        out = self.proc(input_ids, scores)
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        return out


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--vocab", type=int, default=100277)
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--models", default="64x2,512x4", help="DIMxLAYERS, comma-separated")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--schemes", default="kgw,gumbel")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("TM_BENCH_KEY", bytes(range(32)).hex())
    master = tracemark.Key.from_env("TM_BENCH_KEY")
    print(f"torch {torch.__version__}, {args.threads} thread(s), vocabulary {args.vocab}, "
          f"{args.tokens} tokens per row, median of {args.reps}")
    print(f"{'model':>9} {'batch':>5} {'scheme':>7} {'plain ms/step':>13} "
          f"{'watermarked':>11} {'ratio':>6} {'processor us/row':>16} {'share':>6}")
    for spec in args.models.split(","):
        dim, layers = (int(x) for x in spec.split("x"))
        model = TinyLM(args.vocab, dim=dim, layers=layers, heads=max(1, dim // 64), seed=0)
        for batch in (int(b) for b in args.batches.split(",")):
            prompt = torch.randint(0, args.vocab, (batch, 16),
                                   generator=torch.Generator().manual_seed(1))
            for scheme in args.schemes.split(","):
                wm = tracemark.Watermarker(master, vocab_size=args.vocab, scheme=scheme)
                accounts = list(range(batch))

                def plain():
                    generate(model, prompt, args.tokens, [],
                             generator=torch.Generator().manual_seed(2))

                inside = []

                def marked():
                    proc = Timed(TracemarkLogitsProcessor(wm, accounts=accounts))
                    generate(model, prompt, args.tokens, [proc],
                             generator=torch.Generator().manual_seed(2))
                    inside.append(proc.seconds / proc.calls)

                plain(), marked()  # warm-up
                a, b = [], []
                inside.clear()
                for _ in range(args.reps):
                    a.append(timed(plain))
                    b.append(timed(marked))
                pa, pb = statistics.median(a), statistics.median(b)
                proc_s = statistics.median(inside)  # per call (one call per step)
                step_b = pb / args.tokens
                print(f"{spec:>9} {batch:>5} {scheme:>7} {pa * 1e3 / args.tokens:>13.3f} "
                      f"{step_b * 1e3:>11.3f} {pb / pa:>6.3f} {proc_s / batch * 1e6:>16.1f} "
                      f"{proc_s / step_b:>6.1%}")


if __name__ == "__main__":
    main()
