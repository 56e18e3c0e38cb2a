#!/usr/bin/env python3
"""Per-token cost of each watermarked benchmark as a ratio to its baseline from the same run.

Runs a Google Benchmark binary (or reads a saved JSON run) and pairs every benchmark named
FAMILY/VARIANT[/...] with FAMILY/baseline[/...] of the same run, e.g. BM_Dense/kgw with
BM_Dense/baseline. The time per token of each is the per-iteration time divided by the tokens per
iteration (the benchmark's `tokens_per_iter` counter, else items_per_second times the CPU time),
reduced over the repetitions by the median (or the min). Prints Markdown tables: the paired
benchmarks, then the unpaired ones (micro-benchmarks) as time per item.

  python3 bench/ratios.py build/bench/sampling_loop_bench
  python3 bench/ratios.py build/bench/sampling_loop_bench --benchmark_filter=BM_Sparse
  python3 bench/ratios.py build/bench/sampling_loop_bench --save run.json
  python3 bench/ratios.py --json run.json --stat min

Arguments this script does not know are passed to the binary. It adds --benchmark_format=json and
--benchmark_repetitions=3, and --benchmark_min_time=0.5 unless one is given (Google Benchmark 1.7
reads a plain number of seconds). Python 3 standard library only.
"""

import argparse
import json
import statistics
import subprocess
import sys

DEFAULT_REPETITIONS = 3
DEFAULT_MIN_TIME = "0.5"
BASELINE = "baseline"

# Readable names of the sampling-loop shapes; other families print as they are named.
SHAPES = {
    "BM_Sparse": "sparse k=64",
    "BM_Dense": "dense V=151,936",
    "BM_Batch": "batch B=64 x V=151,936",
}

NS_PER_UNIT = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}


def run_binary(binary, extra_args):
    """Runs the benchmark binary and returns its JSON report (a dict)."""
    args = [binary, "--benchmark_format=json"]
    if not any(a.startswith("--benchmark_repetitions") for a in extra_args):
        args.append(f"--benchmark_repetitions={DEFAULT_REPETITIONS}")
    if not any(a.startswith("--benchmark_min_time") for a in extra_args):
        args.append(f"--benchmark_min_time={DEFAULT_MIN_TIME}")
    args += extra_args
    print(f"running: {' '.join(args)}", file=sys.stderr)
    proc = subprocess.run(args, stdout=subprocess.PIPE, check=False, text=True)
    if proc.returncode != 0:
        sys.exit(f"{binary} exited with status {proc.returncode}")
    return json.loads(proc.stdout), args


def ns_per_token(entry, time_field):
    """Time per token (or per item) of one repetition, in nanoseconds; None if unknown."""
    unit = NS_PER_UNIT.get(entry.get("time_unit", "ns"))
    t = entry.get(time_field)
    if unit is None or t is None:
        return None
    t_ns = t * unit
    tokens = entry.get("tokens_per_iter")
    if tokens is None and entry.get("items_per_second"):
        # Google Benchmark computes rates from the CPU time.
        tokens = entry["items_per_second"] * entry["cpu_time"] * unit * 1e-9
    if not tokens:
        return None
    return t_ns / tokens


def collect(report, time_field, stat):
    """Returns {run_name: (ns per token, spread)} over the repetitions of each benchmark."""
    samples = {}
    for entry in report.get("benchmarks", []):
        if entry.get("run_type", "iteration") != "iteration" or entry.get("error_occurred"):
            continue
        value = ns_per_token(entry, time_field)
        if value is not None:
            samples.setdefault(entry.get("run_name", entry["name"]), []).append(value)
    reduce = min if stat == "min" else statistics.median
    out = {}
    for name, values in samples.items():
        centre = reduce(values)
        spread = (max(values) - min(values)) / centre if centre > 0 else 0.0
        out[name] = (centre, spread)
    return out


def split_name(name):
    """'BM_Dense/kgw/min_time:0.5' -> ('BM_Dense', 'kgw', 'min_time:0.5')."""
    parts = name.split("/")
    if len(parts) < 2:
        return parts[0], None, ""
    return parts[0], parts[1], "/".join(parts[2:])


def fmt(x):
    if x >= 1e5:
        return f"{x:,.0f}"
    if x >= 100:
        return f"{x:,.1f}"
    return f"{x:.2f}"


def print_tables(results, stat, time_field):
    baselines = {}
    for name, value in results.items():
        family, variant, rest = split_name(name)
        if variant == BASELINE:
            baselines[(family, rest)] = value
    paired, unpaired = [], []
    for name, value in results.items():
        family, variant, rest = split_name(name)
        base = baselines.get((family, rest))
        if variant == BASELINE:
            continue
        if base is None:
            unpaired.append((name, value))
        else:
            paired.append((family, variant, rest, base, value))

    print(f"ns/token: {stat} over repetitions of the {time_field.replace('_', ' ')} per token.\n")
    if paired:
        print("| shape | scheme | baseline ns/token | watermarked ns/token | ratio "
              "| overhead ns/token |")
        print("|---|---|---:|---:|---:|---:|")
        for family, variant, rest, (b, _), (w, _) in paired:
            shape = SHAPES.get(family, family) + (f" ({rest})" if rest else "")
            print(f"| {shape} | {variant} | {fmt(b)} | {fmt(w)} | {w / b:.2f} | {fmt(w - b)} |")
        print()
    if unpaired:
        print("| benchmark | ns/item | items/s |")
        print("|---|---:|---:|")
        for name, (v, _) in unpaired:
            print(f"| {name} | {fmt(v)} | {1e9 / v:,.3g} |")
        print()
    if results:
        worst_name, (_, worst) = max(results.items(), key=lambda kv: kv[1][1])
        print(f"Largest spread between repetitions: {100 * worst:.1f}% of the {stat} "
              f"({worst_name}).")


def main():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n", 1)[0],
        epilog="Unknown arguments are passed to the benchmark binary.")
    parser.add_argument("binary", nargs="?", help="Google Benchmark binary to run")
    parser.add_argument("--json", metavar="FILE", help="read a saved JSON run instead of running")
    parser.add_argument("--save", metavar="FILE", help="also write the run's JSON report here")
    parser.add_argument("--stat", choices=["median", "min"], default="median",
                        help="reduction over repetitions (default: median)")
    parser.add_argument("--time", choices=["cpu", "real"], default="cpu",
                        help="CPU time (default; robust to other processes) or wall-clock time")
    args, extra = parser.parse_known_args()
    if (args.binary is None) == (args.json is None):
        parser.error("give either a benchmark binary or --json FILE")

    if args.json:
        with open(args.json, encoding="utf-8") as f:
            report = json.load(f)
        command = f"(saved run {args.json})"
    else:
        report, argv = run_binary(args.binary, extra)
        command = " ".join(argv)
    if args.save:
        with open(args.save, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)

    context = report.get("context", {})
    load = context.get("load_avg")
    print(f"Run: {command}")
    print(f"Machine: {context.get('host_name', '?')}, {context.get('num_cpus', '?')} CPUs at "
          f"{context.get('mhz_per_cpu', '?')} MHz, load average "
          f"{', '.join(f'{x:.2f}' for x in load) if load else '?'} at start, "
          f"{context.get('date', '?')}; benchmark library built as "
          f"{context.get('library_build_type', '?')}.\n")
    print_tables(collect(report, f"{args.time}_time", args.stat), args.stat, f"{args.time}_time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
