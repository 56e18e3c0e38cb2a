"""`tracemark scan` on a Dask cluster: the input files are split into partitions, each scored on a
worker by the C++ scanner (tracemark.scan_partition), and the partitions' statistics are merged on
the client in input order (tracemark.scan_merge). The result is exactly the single-process scan's
(docs/scale-out.md), its wall time aside.

    from dask.distributed import Client
    import tracemark.dask
    client = Client("tcp://scheduler:8786")
    result = tracemark.dask.scan(client, {"inputs": ["/data/harvest/"], "account_limit": 25000},
                                 key_file="/secrets/tracemark.key", data_dir="/opt/tracemark/data")

The master key never travels: every worker reads it from `key_file` (or the environment variable
`key_env`), which must exist on each worker as on the client; only options, file names and
statistics cross the network. Inputs must be visible at the same paths on every worker (a shared
file system). Work is split by file, so a dataset of one huge file gains nothing: shard it.
"""

import json
import os

from . import _tracemark as _tm

__all__ = ["partition_files", "scan"]


def _master(key_file, key_env):
    if key_file is not None:
        return _tm.Key.from_file(key_file)
    if key_env is not None:
        return _tm.Key.from_env(key_env)
    raise ValueError("give key_file or key_env: where every worker reads the master key")


def partition_files(files, sizes, partitions):
    """Splits `files` (in reading order) into at most `partitions` contiguous runs of about equal
    total size; contiguity keeps the merged documents in input order."""
    if partitions < 1:
        raise ValueError("partitions must be >= 1")
    if not any(sizes):
        sizes = [1] * len(files)  # empty files: split by count
    total = sum(sizes)
    runs, current, acc = [], [], 0
    for path, size in zip(files, sizes):
        current.append(path)
        acc += size
        if len(runs) < partitions - 1 and acc >= total * (len(runs) + 1) / partitions:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    return runs


def _score(options, key_file, key_env, data_dir, threads):
    return _tm.scan_partition(_master(key_file, key_env), json.dumps(options), data_dir, threads)


def scan(client, options, key_file=None, key_env=None, data_dir=None, partitions=None,
         threads_per_partition=1, progress=None):
    """Runs the scan `options` describe (the JSON options of `tracemark scan`, as in a report) on
    the cluster behind `client`; returns the result as tracemark.scan would. `partitions`
    defaults to four per worker thread; `progress(done, total)` is called as partitions finish;
    `data_dir` defaults to $TRACEMARK_DATA_DIR, else ./data, where each process runs."""
    from dask.distributed import as_completed

    options = dict(options)
    master = _master(key_file, key_env)  # fails here, before any work, if the key is unreadable
    files = _tm.input_files(list(options.get("inputs", [])))
    if not files:
        raise ValueError("the inputs hold no files")
    if partitions is None:
        threads = sum(client.nthreads().values()) or 1
        partitions = 4 * threads
    runs = partition_files(files, [os.path.getsize(f) for f in files], partitions)
    futures = []
    for run in runs:
        part = dict(options, inputs=run)
        futures.append(client.submit(_score, part, key_file, key_env, data_dir,
                                     threads_per_partition, pure=False))
    index = {f.key: i for i, f in enumerate(futures)}
    results = [None] * len(futures)
    for done, future in enumerate(as_completed(futures), 1):
        results[index[future.key]] = future.result()  # re-raises a worker's error here
        if progress is not None:
            progress(done, len(futures))
    return _tm.scan_merge(master, json.dumps(options), results, data_dir)
