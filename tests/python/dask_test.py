"""tracemark.dask: a scan on a local multi-process Dask cluster (python3-distributed) equals the
single-process scan exactly, wall time aside; worker errors reach the caller.

Run by ctest with PYTHONPATH=<build>/python and TRACEMARK_DATA_DIR set."""

import json
import os
import tempfile
import unittest

import numpy as np

import tracemark
import tracemark.dask
from fixed_key import write_key_file

KEY = bytes(range(200, 232))


def watermarked_text(tok, wm, account, rng, tokens=300):
    ids = tok.encode("Report to the committee on the matter of")
    keys = wm.for_account(account) if isinstance(account, int) else None
    state = tracemark.SequenceState()
    start = len(ids)
    for _ in range(tokens):
        logits = (rng.normal(size=tok.vocab_size) * 3).astype(np.float32)
        if account != "plain":
            wm.process_dense(keys, np.array(ids[-wm.context_width:], np.int32), logits, state)
        p = np.exp(logits - logits.max())
        ids.append(int(rng.choice(tok.vocab_size, p=p / p.sum())))
    return tok.decode(ids[start:]).decode("utf-8", "replace")


class DaskScanTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        from dask.distributed import Client, LocalCluster

        cls.tmp = tempfile.TemporaryDirectory()
        cls.key_file = write_key_file(os.path.join(cls.tmp.name, "master.key"), KEY)
        cls.master = tracemark.Key.from_file(cls.key_file)
        cls.data_dir = os.environ["TRACEMARK_DATA_DIR"]
        tok = tracemark.Tokenizer.load("spm:sotu-bpe8k", cls.data_dir)
        wm = tracemark.Watermarker(cls.master, vocab_size=tok.vocab_size)
        rng = np.random.default_rng(8)
        cls.inputs = os.path.join(cls.tmp.name, "harvest")
        os.makedirs(os.path.join(cls.inputs, "b"))
        for f in range(9):
            sub = "b" if f % 3 == 0 else ""
            with open(os.path.join(cls.inputs, sub, f"shard-{f}.jsonl"), "w") as out:
                for i in range(2):
                    account = [4, 9, 13, None, "plain"][(f + i) % 5]
                    text = watermarked_text(tok, wm, account, rng, tokens=200 + 300 * i)
                    out.write(json.dumps({"prompt": "q", "completion": text}) + "\n")
                if f == 5:
                    out.write("{broken\n")
        cls.cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=40)
        cls.client = Client(cls.cluster)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.cluster.close()
        cls.tmp.cleanup()

    def options(self):
        return {"inputs": [self.inputs], "encoding": "spm:sotu-bpe8k", "account_limit": 20,
                "epochs": [0, 1], "alpha": 1e-3}

    def test_the_cluster_scan_equals_the_single_process_scan(self):
        single = tracemark.scan(self.master, json.dumps(self.options()), self.data_dir, 1)
        seen = []
        for partitions in (None, 1, 5):
            with self.subTest(partitions=partitions):
                got = tracemark.dask.scan(self.client, self.options(), key_file=self.key_file,
                                          data_dir=self.data_dir, partitions=partitions,
                                          progress=lambda d, t: seen.append((d, t)))
                a, b = dict(single), dict(got)
                a["totals"] = dict(a["totals"], seconds=0)
                b["totals"] = dict(b["totals"], seconds=0)
                self.assertEqual(a, b)
        self.assertEqual(len(single["documents"]), 18)
        self.assertEqual(len(single["skipped"]), 1)
        self.assertTrue(any(d["account"] is not None for d in single["documents"]))
        self.assertEqual(seen[-1][0], seen[-1][1])

    def test_partitions_are_contiguous_and_balanced(self):
        runs = tracemark.dask.partition_files(list("abcdef"), [10, 10, 10, 10, 10, 10], 3)
        self.assertEqual(runs, [["a", "b"], ["c", "d"], ["e", "f"]])
        runs = tracemark.dask.partition_files(list("abc"), [0, 0, 0], 5)
        self.assertEqual(sum(runs, []), list("abc"))
        self.assertEqual(tracemark.dask.partition_files(list("ab"), [5, 1], 1), [["a", "b"]])
        with self.assertRaises(ValueError):
            tracemark.dask.partition_files(["a"], [1], 0)

    def test_errors_reach_the_caller(self):
        with self.assertRaises(ValueError):
            tracemark.dask.scan(self.client, self.options())  # no key
        with self.assertRaises(FileNotFoundError):
            tracemark.dask.scan(self.client, dict(self.options(), inputs=["/nonexistent/x"]),
                                key_file=self.key_file, data_dir=self.data_dir)
        with self.assertRaises(ValueError):  # raised on a worker, re-raised here
            tracemark.dask.scan(self.client, dict(self.options(), alpha=5),
                                key_file=self.key_file, data_dir=self.data_dir)
        with self.assertRaises(ValueError):
            tracemark.scan_merge(self.master, json.dumps(self.options()),
                                 [(b"garbage", [])], self.data_dir)


if __name__ == "__main__":
    unittest.main()
