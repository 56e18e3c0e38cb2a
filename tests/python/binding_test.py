"""The Python binding (tracemark._tracemark) against the C++ library it wraps: keys, the three
ways of watermarking logits (and that they agree), errors for bad input, detection, and scan()
against the `tracemark scan` command on the same data.

Run by ctest with PYTHONPATH=<build>/python, TRACEMARK_CLI and TRACEMARK_DATA_DIR set."""

import json
import os
import subprocess
import tempfile
import unittest

import numpy as np

import tracemark
from fixed_key import key_from_bytes, write_key_file

V = 5000


def sample(logits, rng):
    p = np.exp(logits - logits.max())
    return int(rng.choice(len(logits), p=p / p.sum()))


class BindingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        # A fixed key (the tests' outcomes are then fixed too), written as a key file.
        cls.key_path = write_key_file(os.path.join(cls.tmp.name, "master.key"),
                                      bytes(range(7, 39)))
        cls.master = tracemark.Key.from_file(cls.key_path)
        cls.key_id = key_from_bytes(bytes(range(7, 39)), "TM_TEST_KEY").id

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_key_shows_its_id_and_never_its_bytes(self):
        self.assertEqual(self.master.id, self.key_id)
        with open(self.key_path, "rb") as f:
            secret = f.read()
        shown = repr(self.master) + str(self.master.commitment) + self.master.id
        self.assertNotIn(secret.hex(), shown)
        self.assertFalse(hasattr(self.master, "bytes"))
        self.assertNotEqual(self.master.derive_epoch(1).id, self.master.derive_epoch(0).id)

    def test_new_key_files_are_random_and_private(self):
        path = os.path.join(self.tmp.name, "new.key")
        kid = tracemark.new_key_file(path)
        self.assertEqual(tracemark.Key.from_file(path).id, kid)
        self.assertNotEqual(kid, self.key_id)
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)

    def test_key_file_errors_are_python_exceptions(self):
        with self.assertRaises(FileNotFoundError):
            tracemark.Key.from_file(os.path.join(self.tmp.name, "absent.key"))
        loose = os.path.join(self.tmp.name, "loose.key")
        with open(loose, "wb") as f:
            f.write(os.urandom(32))
        os.chmod(loose, 0o644)
        with self.assertRaises(PermissionError):
            tracemark.Key.from_file(loose)
        with self.assertRaises(Exception):
            tracemark.new_key_file(self.key_path)  # never overwrites
        os.environ["TM_TEST_BAD_KEY"] = "xyz"
        with self.assertRaises(ValueError):
            tracemark.Key.from_env("TM_TEST_BAD_KEY")

    def test_dense_sparse_and_batch_agree(self):
        wm = tracemark.Watermarker(self.master, vocab_size=V)
        h = wm.context_width
        rng = np.random.default_rng(1)
        accounts = [wm.for_account(a) if a is not None else None for a in (3, 9, 3, None)]
        contexts = rng.integers(0, V, size=(4, h), dtype=np.int32)
        base = rng.normal(size=(4, V)).astype(np.float32)
        batch = base.copy()
        results = wm.process_batch(accounts, contexts, batch)
        for b in range(4):
            row = base[b].copy()
            r = wm.process_dense(accounts[b], contexts[b], row)
            self.assertEqual(r, results[b])
            np.testing.assert_array_equal(row, batch[b])
            ids = np.arange(V, dtype=np.int32)
            vals = base[b].copy()
            rs = wm.process_sparse(accounts[b], contexts[b], ids, vals)
            self.assertEqual(rs["layer"], r["layer"])
            np.testing.assert_array_equal(vals, batch[b])
        self.assertFalse(np.array_equal(batch, base))  # something was watermarked

    def test_logits_are_modified_in_place_or_refused(self):
        wm = tracemark.Watermarker(self.master, vocab_size=V)
        acct = wm.for_account(1)
        ctx = np.array([5, 6, 7, 8][-wm.context_width:], dtype=np.int32)
        with self.assertRaises(TypeError):
            wm.process_dense(acct, ctx, np.zeros(V))  # float64
        with self.assertRaises(TypeError):
            wm.process_dense(acct, ctx, [0.0] * V)  # not an array
        nan = np.zeros(V, dtype=np.float32)
        nan[3] = np.nan
        before = nan.copy()
        with self.assertRaisesRegex(ValueError, "NaN"):
            wm.process_dense(acct, ctx, nan)
        np.testing.assert_array_equal(nan, before)  # nothing modified
        with self.assertRaises(ValueError):
            wm.process_dense(acct, ctx, np.zeros(2 * V, dtype=np.float32)[::2])  # strided
        frozen = np.zeros(V, dtype=np.float32)
        frozen.flags.writeable = False
        with self.assertRaises(ValueError):
            wm.process_dense(acct, ctx, frozen)
        with self.assertRaises(ValueError):
            wm.process_dense(acct, ctx, np.zeros(V - 1, dtype=np.float32))  # vocabulary mismatch
        with self.assertRaises(ValueError):
            wm.process_batch([acct], np.zeros((2, wm.context_width), np.int32),
                             np.zeros((2, V), np.float32))  # one account for two rows
        with self.assertRaises(ValueError):
            tracemark.Watermarker(self.master, vocab_size=V, scheme="nope")
        with self.assertRaises(ValueError):
            tracemark.Watermarker(self.master, vocab_size=V, params="gamma=2")

    def generate(self, wm, account, n, seed, watermark=True):
        rng = np.random.default_rng(seed)
        h = wm.context_width
        ids = list(rng.integers(0, V, size=h))
        state = tracemark.SequenceState()
        for _ in range(n):
            logits = (rng.normal(size=V) * 2.5).astype(np.float32)
            if watermark:
                wm.process_dense(account, np.array(ids[-h:], np.int32), logits, state)
            ids.append(sample(logits, rng))
        return [int(i) for i in ids]

    def test_end_response_writes_the_serving_ledger(self):
        wm = tracemark.Watermarker(self.master, vocab_size=V, epoch=2)
        directory = os.path.join(self.tmp.name, "ledger")
        with tracemark.Ledger(directory) as ledger:
            with self.assertRaisesRegex(ValueError, "tokenizer"):
                wm.set_ledger(ledger)
            wm.set_ledger(ledger, "tiktoken:test")
            acct = wm.for_account(17)
            ids = self.generate(wm, acct, 60, seed=4)
            h = wm.context_width
            wm.end_response(acct, ids[:h], ids[h:], tracemark.SequenceState())
            wm.end_response(None, [], ids[:5])
            with self.assertRaises(ValueError):
                wm.end_response(acct, ids[:h], [4, -1])
            self.assertEqual(ledger.records, 2)
        with self.assertRaisesRegex(Exception, "closed"):
            wm.end_response(acct, ids[:h], ids[h:])
        shown = json.loads(subprocess.run(
            [os.environ["TRACEMARK_CLI"], "ledger", "show", directory, "--records", "5", "--json"],
            capture_output=True, text=True, check=True).stdout)
        first, second = shown["shown"]
        self.assertEqual((first["account"], first["epoch"], first["tokenizer"]),
                         (17, 2, "tiktoken:test"))
        self.assertEqual(first["epoch_key_id"], wm.key_id)
        self.assertEqual(first["prompt_ids"], ids[:h])
        self.assertEqual(first["response_ids"], ids[h:])
        self.assertIsNone(second["account"])
        wm.set_ledger(None)
        wm.end_response(acct, ids[:h], ids[h:])  # no ledger: nothing written, no error

    def test_watermarked_ids_are_detected_and_attributed_plain_ones_are_not(self):
        for scheme in ("kgw", "gumbel", "synthid"):
            with self.subTest(scheme=scheme):
                wm = tracemark.Watermarker(self.master, vocab_size=V, scheme=scheme)
                ids = self.generate(wm, wm.for_account(17), 400, seed=2)
                d = tracemark.detect_ids(self.master, ids, V, scheme=scheme,
                                         score_from=wm.context_width, account_limit=64)
                self.assertLess(d["p_value"], 1e-8)
                self.assertEqual(d["attributed_account"], 17)
                plain = self.generate(wm, None, 400, seed=3, watermark=False)
                d = tracemark.detect_ids(self.master, plain, V, scheme=scheme,
                                         score_from=wm.context_width)
                self.assertGreater(d["p_value"], 1e-4)

    def test_scan_equals_the_command_line_scan(self):
        data_dir = os.environ["TRACEMARK_DATA_DIR"]
        tok = tracemark.Tokenizer.load("cl100k_base", data_dir)
        wm = tracemark.Watermarker(self.master, vocab_size=tok.vocab_size)
        rng = np.random.default_rng(4)
        prompt = tok.encode("The committee met on Tuesday to discuss the budget, and")
        docs = []
        for account in (5, 11, None):
            ids = list(prompt)
            state = tracemark.SequenceState()
            keys = wm.for_account(account) if account is not None else None
            table = rng.normal(size=(64, tok.vocab_size)).astype(np.float32) * 3
            for t in range(600):
                logits = table[t % 64].copy()
                wm.process_dense(keys, np.array(ids[-wm.context_width:], np.int32), logits, state)
                ids.append(sample(logits, rng))
            text = tok.decode(ids[len(prompt):]).decode("utf-8", "replace")
            docs.append({"text": text})
        path = os.path.join(self.tmp.name, "docs.jsonl")
        with open(path, "w") as f:
            for d in docs:
                f.write(json.dumps(d) + "\n")
        options = {"inputs": [path], "account_limit": 32, "alpha": 1e-3}
        got = tracemark.scan(self.master, json.dumps(options), data_dir, 2)
        cli = subprocess.run([os.environ["TRACEMARK_CLI"], "scan", "--key", self.key_path,
                              "--accounts", "32", "--alpha", "1e-3", "--json", "--no-progress",
                              "--data-dir",
                              data_dir, path], capture_output=True, text=True, check=True)
        want = json.loads(cli.stdout)
        for result in (got, want):
            del result["totals"]["seconds"]  # the one field that is not a function of the inputs
        self.assertEqual(got, want)
        self.assertEqual(got["totals"]["documents_flagged"], 3)  # anonymous text: provider layer
        # Re-tokenised text keeps the provider signal; an account, when named, is the right one.
        for doc, account in zip(got["documents"], (5, 11, None)):
            self.assertLess(doc["p_value"], 1e-6)
            self.assertIn(doc["account"], (None, account))
        self.assertEqual(got["documents"][1]["account"], 11)
        with self.assertRaises(ValueError):
            tracemark.scan(self.master, "{not json", data_dir)
        with self.assertRaises(ValueError):
            tracemark.scan(self.master, json.dumps({"inputs": [path], "alpha": 7}), data_dir)

    def test_errors_while_the_gil_is_released_are_exceptions(self):
        # Raised while the GIL was released, these killed the interpreter (a segfault).
        data_dir = os.environ["TRACEMARK_DATA_DIR"]
        with self.assertRaises((FileNotFoundError, ValueError)):
            tracemark.scan(self.master, json.dumps({"inputs": ["nope/"]}), data_dir)
        empty = os.path.join(self.tmp.name, "empty.txt")
        open(empty, "w").close()
        with self.assertRaisesRegex(ValueError, "no usable document"):
            tracemark.scan(self.master, json.dumps({"inputs": [empty]}), data_dir)
        with self.assertRaises(FileNotFoundError):
            tracemark.scan_partition(self.master, json.dumps({"inputs": ["nope/"]}), data_dir)
        with self.assertRaises(ValueError):
            tracemark.scan_merge(self.master, json.dumps({"inputs": [empty]}), [], data_dir)
        wm = tracemark.Watermarker(self.master, vocab_size=V)
        ctx = np.zeros(wm.context_width, np.int32)
        with self.assertRaises(ValueError):  # a row of the wrong vocabulary size
            wm.process_dense(None, ctx, np.zeros(V + 1, np.float32))
        with self.assertRaises(ValueError):
            wm.process_batch([None], ctx.reshape(1, -1), np.zeros((1, V + 1), np.float32))
        with self.assertRaises(ValueError):  # an id outside the vocabulary
            tracemark.detect_ids(self.master, [V + 5] * 10, V)

    def test_data_dir_defaults_to_the_environment(self):
        path = os.path.join(self.tmp.name, "one.txt")
        with open(path, "w") as f:
            f.write("A sentence or two of ordinary text.\n")
        old = os.environ["TRACEMARK_DATA_DIR"]
        try:
            os.environ["TRACEMARK_DATA_DIR"] = os.path.join(self.tmp.name, "no-data-here")
            with self.assertRaisesRegex(FileNotFoundError, "no-data-here"):
                tracemark.scan(self.master, json.dumps({"inputs": [path]}))
            with self.assertRaisesRegex(FileNotFoundError, "no-data-here"):
                tracemark.Tokenizer.load("cl100k_base")
            os.environ["TRACEMARK_DATA_DIR"] = old
            self.assertEqual(tracemark.scan(self.master, json.dumps({"inputs": [path]}))
                             ["totals"]["documents"], 1)
        finally:
            os.environ["TRACEMARK_DATA_DIR"] = old

    def test_unknown_scan_options_are_refused(self):
        with self.assertRaisesRegex(ValueError, "unknown scan option 'accounts'"):
            tracemark.scan(self.master, json.dumps({"inputs": ["x"], "accounts": 3}))

    def test_detect_ids_gives_none_where_the_cli_gives_null(self):
        wm = tracemark.Watermarker(self.master, vocab_size=V)
        plain = self.generate(wm, None, 200, seed=5, watermark=False)
        d = tracemark.detect_ids(self.master, plain, V, score_from=wm.context_width)
        self.assertIsNone(d["attributed_account"])
        self.assertIsNone(d["attributed_p_value"])
        self.assertIsNone(d["account_p_value"])
        d = tracemark.detect_ids(self.master, plain, V, score_from=wm.context_width, account=3)
        self.assertIsInstance(d["account_p_value"], float)
        with self.assertRaises(ValueError):
            tracemark.detect_ids(self.master, plain, V, alpha=0)

    def test_version(self):
        self.assertRegex(tracemark.__version__, r"^\d+\.\d+\.\d+$")


if __name__ == "__main__":
    unittest.main()
