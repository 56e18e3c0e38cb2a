"""tracemark.hf.TracemarkLogitsProcessor in a Hugging Face generate-style PyTorch decode loop
(tiny_lm.generate: processors, then temperature, softmax, multinomial) over a model the test
builds itself with a real tokenizer's vocabulary (cl100k_base, 100,277 ids).

Run by ctest with PYTHONPATH=<build>/python and TRACEMARK_DATA_DIR set."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tracemark  # noqa: E402
from fixed_key import key_from_bytes  # noqa: E402
from tiny_lm import TinyLM, generate  # noqa: E402
from tracemark.hf import TracemarkLogitsProcessor  # noqa: E402

KEY = bytes(range(101, 133))


class HfProcessorTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.set_num_threads(1)
        cls.master = key_from_bytes(KEY, "TM_HF_TEST_KEY")
        cls.tok = tracemark.Tokenizer.load("cl100k_base", os.environ["TRACEMARK_DATA_DIR"])
        cls.vocab = cls.tok.vocab_size
        cls.model = TinyLM(cls.vocab, seed=1)
        cls.prompt = cls.tok.encode("Summarise the quarterly report for the board:")

    def batch(self, rows):
        return torch.tensor([self.prompt] * rows, dtype=torch.long)

    def detect(self, ids, scheme="kgw", **kw):
        return tracemark.detect_ids(self.master, [int(i) for i in ids], self.vocab, scheme=scheme,
                                    score_from=len(self.prompt), **kw)

    def test_each_row_is_watermarked_for_its_account(self):
        accounts = [42, 7, None]
        for scheme in ("kgw", "gumbel", "synthid"):
            with self.subTest(scheme=scheme):
                wm = tracemark.Watermarker(self.master, vocab_size=self.vocab, scheme=scheme)
                proc = TracemarkLogitsProcessor(wm, accounts=accounts)
                out = generate(self.model, self.batch(3), 500, [proc],
                               generator=torch.Generator().manual_seed(5))
                for row, account in zip(out, accounts):
                    # 500 tokens name their account at about 1e-5 to 1e-12 (docs/scan.md: a single
                    # answer needs 400-800 tokens at the default 1e-6), so the processor's
                    # account is checked at 1e-3 over 4 candidates, which it always reaches.
                    d = self.detect(row, scheme, account_limit=100, alpha=1e-3, max_candidates=4)
                    self.assertLess(d["p_value"], 1e-10, (scheme, account, d))
                    if account is not None:
                        self.assertEqual(d["attributed_account"], account, (scheme, d))
                        named = self.detect(row, scheme, account=account)
                        self.assertLess(named["account_p_value"], 1e-3, (scheme, named))
                    else:
                        self.assertIsNone(d["attributed_account"])

    def test_the_same_loop_without_the_processor_is_not_flagged(self):
        out = generate(self.model, self.batch(2), 300, [],
                       generator=torch.Generator().manual_seed(5))
        for scheme in ("kgw", "gumbel", "synthid"):
            for row in out:
                self.assertGreater(self.detect(row, scheme)["p_value"], 1e-4)

    def test_text_round_trip_keeps_the_signal(self):
        wm = tracemark.Watermarker(self.master, vocab_size=self.vocab)
        proc = TracemarkLogitsProcessor(wm, accounts=[3])
        out = generate(self.model, self.batch(1), 300, [proc],
                       generator=torch.Generator().manual_seed(9))
        text = self.tok.decode([int(i) for i in out[0, len(self.prompt):]])
        ids = self.tok.encode(text.decode("utf-8", "replace"))
        d = tracemark.detect_ids(self.master, ids, self.vocab)
        self.assertLess(d["p_value"], 1e-8)

    def test_the_processor_equals_the_library_row_by_row(self):
        wm = tracemark.Watermarker(self.master, vocab_size=self.vocab, scheme="gumbel")
        proc = TracemarkLogitsProcessor(wm, accounts=[11, None])
        ids = torch.randint(0, self.vocab, (2, 9), generator=torch.Generator().manual_seed(2))
        scores = torch.randn(2, self.vocab, generator=torch.Generator().manual_seed(3))
        want = scores.clone().numpy()
        acct = wm.for_account(11)
        h = wm.context_width
        for b, a in enumerate([acct, None]):
            wm.process_dense(a, ids[b, -h:].numpy().astype(np.int32), want[b],
                             tracemark.SequenceState())
        pointer = scores.data_ptr()
        got = proc(ids, scores)
        self.assertIs(got, scores)  # in place: no copy for contiguous float32 CPU scores
        self.assertEqual(got.data_ptr(), pointer)
        np.testing.assert_array_equal(got.numpy(), want)

    def test_canaries_equal_the_library_with_the_full_history(self):
        # With canary phrasings the chain reads up to history_width ids: the processor passes
        # exactly those, the library call here the whole history.
        for scheme in ("kgw", "gumbel"):
            with self.subTest(scheme=scheme):
                wm = tracemark.Watermarker(self.master, vocab_size=self.vocab, scheme=scheme,
                                           canary=self.tok)
                proc = TracemarkLogitsProcessor(wm, accounts=[11, None, 5])
                states = [tracemark.SequenceState() for _ in range(3)]
                keys = [wm.for_account(11), None, wm.for_account(5)]
                gen = torch.Generator().manual_seed(8)
                ids = torch.randint(0, self.vocab, (3, 120), generator=gen)
                moves = 0
                for _ in range(12):
                    scores = torch.randn(3, self.vocab, generator=gen) * 4
                    want = scores.clone().numpy()
                    for b in range(3):
                        r = wm.process_dense(keys[b], ids[b].numpy().astype(np.int32), want[b],
                                             states[b])
                        moves += r["canary_moves"]
                    got = proc(ids, scores)
                    np.testing.assert_array_equal(got.numpy(), want)
                    self.assertEqual([r["canary_moves"] for r in proc.last_results][1], 0)
                    nxt = torch.argmax(got, dim=-1, keepdim=True)
                    ids = torch.cat([ids, nxt], dim=1)
                self.assertGreater(moves, 0, "the comparison must cover canary steps")

    def test_half_precision_and_padded_vocabularies(self):
        wm = tracemark.Watermarker(self.master, vocab_size=self.vocab, scheme="gumbel")
        ids = torch.randint(0, self.vocab, (2, 9), generator=torch.Generator().manual_seed(4))
        base = torch.randn(2, self.vocab + 75, generator=torch.Generator().manual_seed(6))
        padded = base.clone()
        proc = TracemarkLogitsProcessor(wm, accounts=[1, 2])
        proc(ids, padded)
        exact = base[:, : self.vocab].contiguous()
        TracemarkLogitsProcessor(wm, accounts=[1, 2])(ids, exact)
        self.assertTrue(torch.equal(padded[:, : self.vocab], exact))
        for b, r in enumerate(proc.last_results):  # a keyed choice leaves no padded column open
            tail = padded[b, self.vocab:]
            self.assertTrue(torch.isneginf(tail).all() if r["token_chosen"]
                            else torch.equal(tail, base[b, self.vocab:]))
        half = base[:, : self.vocab].half()
        TracemarkLogitsProcessor(wm, accounts=[1, 2])(ids, half)
        self.assertEqual(half.dtype, torch.float16)
        self.assertTrue(torch.equal(half.argmax(dim=1), exact.argmax(dim=1)))

    def test_bad_calls_are_refused_and_nothing_is_changed(self):
        wm = tracemark.Watermarker(self.master, vocab_size=self.vocab)
        proc = TracemarkLogitsProcessor(wm, accounts=[1, 2])
        ids = torch.zeros(3, 5, dtype=torch.long)
        with self.assertRaisesRegex(ValueError, "3 rows"):
            proc(ids, torch.zeros(3, self.vocab))
        with self.assertRaisesRegex(ValueError, "columns"):
            proc(ids[:2], torch.zeros(2, self.vocab - 1))
        nan = torch.zeros(2, self.vocab)
        nan[1, 7] = float("nan")
        before = nan.clone()
        with self.assertRaisesRegex(ValueError, "NaN"):
            proc(ids[:2], nan)
        self.assertTrue(torch.equal(nan[0], before[0]))

    def test_reset_starts_new_responses(self):
        wm = tracemark.Watermarker(self.master, vocab_size=self.vocab, scheme="gumbel")
        proc = TracemarkLogitsProcessor(wm, accounts=[5])
        ids = torch.tensor([self.prompt])
        first = proc(ids, torch.zeros(1, self.vocab) + torch.arange(self.vocab) * 1e-6)
        proc.reset([6])
        self.assertEqual(proc.accounts, [6])
        again = proc(ids, torch.zeros(1, self.vocab) + torch.arange(self.vocab) * 1e-6)
        self.assertTrue(torch.equal(first, again))  # same context: the same keyed choice

    def test_end_responses_record_each_row_for_its_account(self):
        with tempfile.TemporaryDirectory() as tmp:
            wm = tracemark.Watermarker(self.master, vocab_size=self.vocab)
            ledger = tracemark.Ledger(os.path.join(tmp, "ledger"))
            wm.set_ledger(ledger, "cl100k_base")
            proc = TracemarkLogitsProcessor(wm, accounts=[42, None])
            out = generate(self.model, self.batch(2), 40, [proc],
                           generator=torch.Generator().manual_seed(3))
            padded = torch.cat([out, torch.full((2, 3), 100257)], dim=1)  # <|endoftext|> as pad
            with self.assertRaises(ValueError):
                proc.end_responses(len(self.prompt), padded[:1])
            proc.end_responses(len(self.prompt), padded, pad_token_id=100257)
            ledger.close()
            shown = json.loads(subprocess.run(
                [os.environ["TRACEMARK_CLI"], "ledger", "show", os.path.join(tmp, "ledger"),
                 "--records", "5", "--json"], capture_output=True, text=True, check=True).stdout)
            self.assertEqual([r["account"] for r in shown["shown"]], [42, None])
            for row, rec in zip(out, shown["shown"]):
                self.assertEqual(rec["response_ids"], [int(i) for i in row[len(self.prompt):]])
                self.assertEqual(rec["prompt_ids"], self.prompt[-wm.history_width:])


if __name__ == "__main__":
    unittest.main()
