"""tracemark.vllm.TracemarkVllmProcessor driven through vLLM's v1 logits-processor contract by
vllm_driver (vLLM itself cannot be installed here): requests arriving and finishing at different
steps, holes condensed by one-way moves, swaps, live output lists. Every request's tokens must be
exactly those of the same request served alone through the library, and carry its account.

Run by ctest with PYTHONPATH=<build>/python and TRACEMARK_DATA_DIR set."""

import json
import os
import subprocess
import sys
import tempfile
import types
import unittest

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tracemark  # noqa: E402
import vllm_driver  # noqa: E402
from fixed_key import key_from_bytes, write_key_file  # noqa: E402
from tiny_lm import TinyLM  # noqa: E402
from tracemark.vllm import TracemarkVllmProcessor  # noqa: E402

KEY = bytes(range(60, 92))
VOCAB = 32000  # a Llama-2-sized vocabulary


def alone(model, wm, request, moves=None):
    """The request served alone: process_dense on each step's logits with the last history_width
    ids of prompt and output, the same sampler. `moves`, a list, receives each step's canary
    moves."""
    keys = None
    account = (request.params.extra_args or {}).get("tracemark_account")
    if account is not None:
        keys = wm.for_account(account)
    state = tracemark.SequenceState()
    gen = torch.Generator().manual_seed(request.params.seed)
    ids = list(request.prompt)
    logits, cache = model(torch.tensor([ids]))
    out = []
    width = wm.history_width
    while len(out) < request.params.max_tokens:
        row = logits[0].clone()
        r = wm.process_dense(keys, np.array(ids[-width:], np.int32), row.numpy(), state)
        if moves is not None:
            moves.append(r["canary_moves"])
        tok = int(torch.multinomial(torch.softmax(row, dim=-1), 1, generator=gen))
        out.append(tok)
        ids.append(tok)
        logits, cache = model(torch.tensor([[tok]]), cache)
    return out


def requests(n, seed=0, accounts=None, max_tokens=None, vocab=VOCAB):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        account = accounts[i] if accounts is not None else int(rng.integers(0, 50))
        extra = {"tracemark_account": account} if account is not None else None
        prompt = [int(t) for t in rng.integers(0, vocab, size=int(rng.integers(1, 12)))]
        tokens = max_tokens or int(rng.integers(20, 90))
        out.append(vllm_driver.Request(i, prompt, vllm_driver.SamplingParams(
            max_tokens=tokens, seed=1000 + i, extra_args=extra), arrival=int(rng.integers(0, 40))))
    return out


class VllmProcessorTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.set_num_threads(1)
        cls.master = key_from_bytes(KEY, "TM_VLLM_TEST_KEY")
        cls.model = TinyLM(VOCAB, seed=3)

    def setUp(self):
        for var in ("TRACEMARK_KEY_FILE", "TRACEMARK_KEY_ENV", "TRACEMARK_REQUIRE_ACCOUNT",
                    "TRACEMARK_SCHEME", "TRACEMARK_PARAMS", "TRACEMARK_EPOCH",
                    "TRACEMARK_LEDGER_DIR", "TRACEMARK_LEDGER_TOKENIZER",
                    "TRACEMARK_CANARY_TOKENIZER"):
            os.environ.pop(var, None)

    def processor(self, scheme="kgw"):
        wm = tracemark.Watermarker(self.master, vocab_size=VOCAB, scheme=scheme)
        return wm, TracemarkVllmProcessor(None, torch.device("cpu"), False, watermarker=wm)

    def test_a_churning_batch_gives_each_request_exactly_its_solo_tokens(self):
        for scheme in ("kgw", "gumbel"):
            with self.subTest(scheme=scheme):
                wm, proc = self.processor(scheme)
                reqs = requests(14, seed=1)
                reqs[3].params.extra_args = None  # anonymous
                got = vllm_driver.run(self.model, proc, reqs, swap_rate=0.3, seed=2)
                self.assertEqual(len(got), len(reqs))
                for r in reqs:
                    self.assertEqual(got[r.rid], alone(self.model, wm, r), (scheme, r.rid))
                self.assertEqual(proc._slots, {})  # every finished request was let go
                self.assertEqual(proc._keys, {})

    def test_canaries_in_a_churning_batch_equal_each_request_alone(self):
        # The canary phrasings need the served model's tokenizer: a SentencePiece model of 8,000
        # ids the set-up trains, and a tiny model over its vocabulary.
        spm = "spm:" + os.path.join(os.environ["TRACEMARK_DATA_DIR"], "spm", "sotu-bpe8k.model")
        tok = tracemark.Tokenizer.load(spm)
        model = TinyLM(tok.vocab_size, seed=4)
        for scheme in ("kgw", "synthid"):
            with self.subTest(scheme=scheme):
                wm = tracemark.Watermarker(self.master, vocab_size=tok.vocab_size, scheme=scheme,
                                           canary=tok)
                self.assertTrue(wm.canary)
                self.assertGreaterEqual(wm.history_width, 78)
                proc = TracemarkVllmProcessor(None, torch.device("cpu"), False, watermarker=wm)
                reqs = requests(8, seed=11, vocab=tok.vocab_size, max_tokens=60)
                reqs[2].params.extra_args = None  # anonymous: no canary either
                got = vllm_driver.run(model, proc, reqs, swap_rate=0.3, seed=6)
                moves = []
                for r in reqs:
                    self.assertEqual(got[r.rid], alone(model, wm, r, moves), (scheme, r.rid))
                self.assertGreater(sum(moves), 0, "the comparison must cover canary steps")

    def test_served_text_is_detected_and_attributed(self):
        wm, proc = self.processor()
        reqs = requests(4, seed=5, accounts=[8, 23, 8, None], max_tokens=500)
        got = vllm_driver.run(self.model, proc, reqs, seed=3)
        for r in reqs:
            d = tracemark.detect_ids(self.master, r.prompt + got[r.rid], VOCAB,
                                     score_from=len(r.prompt), account_limit=64,
                                     # 500 tokens: 1e-3 over 4 candidates (see hf_test)
                                     alpha=1e-3, max_candidates=4)
            self.assertLess(d["p_value"], 1e-10)
            account = (r.params.extra_args or {}).get("tracemark_account")
            self.assertEqual(d["attributed_account"], account, d)

    def test_half_precision_logits_go_through_float32_and_back(self):
        wm, proc = self.processor()
        reqs = requests(5, seed=7, max_tokens=200)
        got = vllm_driver.run(self.model, proc, reqs, dtype=torch.float16, seed=4)
        for r in reqs:
            d = tracemark.detect_ids(self.master, r.prompt + got[r.rid], VOCAB,
                                     score_from=len(r.prompt))
            self.assertLess(d["p_value"], 1e-6)
        # One step by hand: the half-precision result is the float32 result, rounded.
        wm, proc = self.processor()
        proc.update_state(vllm_driver.BatchUpdate(2, [], [
            (0, vllm_driver.SamplingParams(extra_args={"tracemark_account": 1}), [1, 2, 3, 4], []),
            (1, vllm_driver.SamplingParams(), [5, 6, 7, 8, 9], [])], []))
        base = torch.randn(2, VOCAB, generator=torch.Generator().manual_seed(1))
        f32 = proc.apply(base.clone())
        f16 = proc.apply(base.half())
        self.assertTrue(torch.equal(f16, f32.half()) or
                        torch.allclose(f16.float(), f32, atol=1e-2))

    def test_configured_from_the_environment(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = write_key_file(os.path.join(tmp, "master.key"), KEY)
            config = types.SimpleNamespace(
                model_config=types.SimpleNamespace(get_vocab_size=lambda: VOCAB))
            with self.assertRaisesRegex(ValueError, "TRACEMARK_KEY_FILE"):
                TracemarkVllmProcessor(config, torch.device("cpu"), False)
            os.environ["TRACEMARK_KEY_FILE"] = path
            os.environ["TRACEMARK_SCHEME"] = "synthid"
            proc = TracemarkVllmProcessor(config, torch.device("cpu"), False)
            wm = tracemark.Watermarker(self.master, vocab_size=VOCAB, scheme="synthid")
            reqs = requests(3, seed=9)
            got = vllm_driver.run(self.model, proc, reqs, seed=5)
            for r in reqs:
                self.assertEqual(got[r.rid], alone(self.model, wm, r))

    def test_each_request_is_recorded_in_the_ledger_when_it_leaves_the_batch(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = write_key_file(os.path.join(tmp, "master.key"), KEY)
            config = types.SimpleNamespace(
                model_config=types.SimpleNamespace(get_vocab_size=lambda: VOCAB))
            os.environ["TRACEMARK_KEY_FILE"] = path
            os.environ["TRACEMARK_LEDGER_DIR"] = os.path.join(tmp, "ledger")
            with self.assertRaisesRegex(ValueError, "TRACEMARK_LEDGER_TOKENIZER"):
                TracemarkVllmProcessor(config, torch.device("cpu"), False)
            os.environ["TRACEMARK_LEDGER_TOKENIZER"] = "test:tiny"
            proc = TracemarkVllmProcessor(config, torch.device("cpu"), False)
            reqs = requests(6, seed=11)
            reqs[2].params.extra_args = None  # anonymous
            got = vllm_driver.run(self.model, proc, reqs, swap_rate=0.3, seed=6)
            proc._ledger.close()
            shown = json.loads(subprocess.run(
                [os.environ["TRACEMARK_CLI"], "ledger", "show", os.path.join(tmp, "ledger"),
                 "--records", "10", "--json"], capture_output=True, text=True, check=True).stdout)
            self.assertEqual(shown["records"], len(reqs))
            by_output = {tuple(r["response_ids"]): r for r in shown["shown"]}
            for r in reqs:
                rec = by_output[tuple(got[r.rid])]
                extra = r.params.extra_args or {}
                self.assertEqual(rec["account"], extra.get("tracemark_account"))
                self.assertEqual(rec["prompt_ids"], r.prompt[-proc._h:])
                self.assertEqual(rec["tokenizer"], "test:tiny")

    def test_request_parameters_are_validated(self):
        P = vllm_driver.SamplingParams
        TracemarkVllmProcessor.validate_params(P(extra_args={"tracemark_account": 3}))
        TracemarkVllmProcessor.validate_params(P())  # anonymous is allowed by default
        for bad in ("7", -1, True, 2.5):
            with self.assertRaises(ValueError):
                TracemarkVllmProcessor.validate_params(P(extra_args={"tracemark_account": bad}))
        os.environ["TRACEMARK_REQUIRE_ACCOUNT"] = "1"
        with self.assertRaisesRegex(ValueError, "requires"):
            TracemarkVllmProcessor.validate_params(P())
        wm, proc = self.processor()
        self.assertFalse(proc.is_argmax_invariant())
        with self.assertRaises(ValueError):
            proc.update_state(vllm_driver.BatchUpdate(1, [], [
                (0, P(extra_args={"tracemark_account": 1 << 62}), [1], [])], []))


if __name__ == "__main__":
    unittest.main()
