"""Speed-up of a tracemark scan on a local Dask cluster over worker counts (docs/scale-out.md).

Builds a dataset of JSONL shards from the State of the Union corpus (data/npm/sotu, one record per
~1,500 characters of whole sentences, each prompt numbered so that no two records are equal),
then times, on the same files: the single-process scan with one scan thread (the baseline), and
tracemark.dask.scan on LocalClusters of 1, 2, ... single-threaded worker processes (cluster
start-up excluded). Every cluster result is checked equal to the baseline's. Usage:

    PYTHONPATH=build/python /usr/bin/python3 studies/dask_scaleout.py [--mb 48] [--workers 1,2,4]
"""

import argparse
import glob
import json
import os
import sys
import tempfile
import time

import tracemark
import tracemark.dask


def build_dataset(out_dir, data_dir, megabytes, shards):
    speeches = sorted(glob.glob(os.path.join(data_dir, "npm", "sotu", "data", "*.txt")))
    if not speeches:
        sys.exit("no SOTU corpus under data/npm/sotu (run scripts/setup.sh)")
    paragraphs = []  # runs of whole sentences of about 1,500 characters (an answer's length)
    for path in speeches:
        with open(path, encoding="utf-8") as f:
            run = ""
            for sentence in f.read().replace("\n", " ").split(". "):
                run += sentence + ". "
                if len(run) >= 1500:
                    paragraphs.append(run.strip())
                    run = ""
    target = megabytes << 20
    per_shard = target // shards
    i = 0
    for s in range(shards):
        with open(os.path.join(out_dir, f"shard-{s:03d}.jsonl"), "w") as out:
            written = 0
            while written < per_shard:
                rec = json.dumps({"prompt": f"shard {s} record {i}",
                                  "completion": paragraphs[i % len(paragraphs)]}) + "\n"
                out.write(rec)
                written += len(rec)
                i += 1
    return sum(os.path.getsize(p) for p in glob.glob(os.path.join(out_dir, "*.jsonl")))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=int, default=48, help="dataset size")
    ap.add_argument("--shards", type=int, default=48)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--data-dir", default="data")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--accounts", type=int, default=1000, help="accounts issued")
    args = ap.parse_args()
    from dask.distributed import Client, LocalCluster

    with tempfile.TemporaryDirectory() as tmp:
        key_file = os.path.join(tmp, "master.key")
        tracemark.new_key_file(key_file)
        master = tracemark.Key.from_file(key_file)
        ds = os.path.join(tmp, "ds")
        os.makedirs(ds)
        size = build_dataset(ds, args.data_dir, args.mb, args.shards)
        options = {"inputs": [ds], "account_limit": args.accounts}
        print(f"dataset: {size / 1e6:.1f} MB in {args.shards} shards; {os.cpu_count()} CPUs; "
              f"best of {args.reps}")
        times = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            base = tracemark.scan(master, json.dumps(options), args.data_dir, 1)
            times.append(time.perf_counter() - t0)
        t_base = min(times)
        docs = len(base["documents"])
        print(f"{'run':>28} {'seconds':>8} {'MB/s':>6} {'speed-up':>8}")
        print(f"{'single process, 1 thread':>28} {t_base:>8.2f} {size / 1e6 / t_base:>6.1f} "
              f"{1.0:>8.2f}   ({docs} documents)")
        base["totals"]["seconds"] = 0
        for n in (int(w) for w in args.workers.split(",")):
            with LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                              dashboard_address=None, silence_logs=40) as cluster, \
                    Client(cluster) as client:
                times = []
                for _ in range(args.reps):
                    marks = []
                    t0 = time.perf_counter()
                    got = tracemark.dask.scan(client, options, key_file=key_file,
                                              data_dir=args.data_dir,
                                              progress=lambda d, t: marks.append(
                                                  time.perf_counter()))
                    t1 = time.perf_counter()
                    times.append((t1 - t0, marks[-1] - t0, t1 - marks[-1]))
                times.sort()
                got["totals"]["seconds"] = 0
                assert got == base, "the cluster's result differs from the single scan's"
                t, scoring, merging = times[0]
                print(f"{f'dask, {n} worker process(es)':>28} {t:>8.2f} {size / 1e6 / t:>6.1f} "
                      f"{t_base / t:>8.2f}   (partitions {scoring:.2f} s, merge and summary "
                      f"{merging:.2f} s; equal to the single scan)")


if __name__ == "__main__":
    main()
