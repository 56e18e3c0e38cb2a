"""llama.cpp end to end: a Llama model trained here (integrations/llama/train_tiny_llama.py), run by
real llama.cpp through `tracemark-llama` with the tracemark sampler in its chain, then detected and
attributed by tracemark from the text alone.

Environment (set by CTest): TRACEMARK_LLAMA_BIN (tracemark-llama), TRACEMARK_LLAMA_MODEL (the
GGUF file; OUT.ref.json beside it), TRACEMARK_DATA_DIR, PYTHONPATH with the tracemark package.
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np

import tracemark

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))
from fixed_key import key_from_bytes, write_key_file  # noqa: E402

SECRET = bytes(range(40, 72))
PROMPTS = ["The state of the Union is", "Fellow citizens, the year that has passed"]
TOKENIZER = "tiktoken:r50k_base"  # GPT-2's ids: the model's vocabulary


def run_llama(args, check=True):
    cmd = [os.environ["TRACEMARK_LLAMA_BIN"], "--model", os.environ["TRACEMARK_LLAMA_MODEL"],
           "--threads", "1"] + args
    r = subprocess.run(cmd, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"{cmd} exited {r.returncode}: {r.stderr}")
    return r


def records(stdout):
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


class LlamaEndToEndTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.data_dir = os.environ["TRACEMARK_DATA_DIR"]
        cls.key_path = write_key_file(os.path.join(cls.tmp.name, "master.key"), SECRET)
        cls.master = key_from_bytes(SECRET, "TRACEMARK_LLAMA_TEST_KEY")
        cls.vocab = tracemark.Tokenizer.load(TOKENIZER, cls.data_dir).vocab_size

    def write(self, name, recs):
        path = os.path.join(self.tmp.name, name)
        with open(path, "w") as f:
            for r in recs:
                f.write(json.dumps({"prompt": r["prompt"], "completion": r["completion"]}) + "\n")
        return path

    def scan(self, path, scheme="kgw"):
        options = {"inputs": [path], "encoding": TOKENIZER, "scheme": scheme,
                   "account_limit": 100, "alpha": 1e-4, "canary": False}
        return tracemark.scan(self.master, json.dumps(options), self.data_dir, 1)

    def test_the_verifier_tokenises_as_llama_cpp_does(self):
        """llama.cpp's own tokenizer test for the model's vocabulary file (strings and the ids
        llama.cpp gives them), through tracemark's tokenizer; and llama.cpp's ids for a prompt."""
        base = os.path.join(self.data_dir, "llama.cpp", "models", "ggml-vocab-gpt-2.gguf")
        with open(base + ".inp", encoding="utf-8") as f:
            inputs = f.read().split("\n__ggml_vocab_test__\n")
        with open(base + ".out") as f:
            outputs = f.read().split("\n")
        tok = tracemark.Tokenizer.load(TOKENIZER, self.data_dir)
        pairs = list(zip(inputs, outputs))
        self.assertGreater(len(pairs), 40)
        for text, ids in pairs:
            self.assertEqual(list(tok.encode(text)), [int(i) for i in ids.split()], repr(text))
        text = "Mr. Speaker, 1,234 ≠ ½ — naïve façade\n\tdone."
        r = run_llama(["--no-watermark", "--prompt", text, "--max-tokens", "1"])
        self.assertEqual(records(r.stdout)[0]["prompt_token_ids"], list(tok.encode(text)))

    def test_llama_cpp_computes_what_pytorch_computed(self):
        """The GGUF file is the trained model: llama.cpp's logits after the reference prompt equal
        PyTorch's (float32 throughout; summation order differs, so to a tolerance)."""
        with open(os.environ["TRACEMARK_LLAMA_MODEL"] + ".ref.json") as f:
            ref = json.load(f)
        out = os.path.join(self.tmp.name, "logits.f32")
        r = run_llama(["--no-watermark", "--prompt", ref["prompt"], "--max-tokens", "1",
                       "--logits-out", out])
        self.assertEqual(records(r.stdout)[0]["prompt_token_ids"], ref["prompt_ids"])
        got = np.fromfile(out, dtype=np.float32)
        want = np.array(ref["logits"], dtype=np.float32)
        self.assertEqual(got.shape, want.shape)
        self.assertLess(np.abs(got - want).max(), 2e-3 * max(1.0, np.abs(want).max()))
        self.assertEqual(int(got.argmax()), int(want.argmax()))
        self.assertGreater(want.std(), 0.5)  # a trained model, not a flat one

    def test_watermarked_generation_is_detected_and_attributed_from_text(self):
        recs = {}
        for account in (42, 7):
            args = ["--key", self.key_path, "--account", str(account), "--max-tokens", "500",
                    "--responses", "2", "--top-k", "100", "--seed", str(account),
                    "--ledger", os.path.join(self.tmp.name, "ledger")]
            for p in PROMPTS:
                args += ["--prompt", p]
            recs[account] = records(run_llama(args).stdout)
            self.assertEqual(len(recs[account]), 4)
            for r in recs[account]:
                self.assertEqual(r["stats"]["failed"], 0)
                self.assertGreater(r["stats"]["provider"], 150)
                self.assertGreater(r["stats"]["account"], 150)
        # The serving ledger holds each response as served, under its account, before it was
        # printed.
        shown = json.loads(subprocess.run(
            [os.environ["TRACEMARK_CLI"], "ledger", "show", os.path.join(self.tmp.name, "ledger"),
             "--records", "10", "--json"], capture_output=True, text=True, check=True).stdout)
        self.assertEqual(shown["records"], 8)
        served = recs[42] + recs[7]  # segments in the order they were opened
        for rec, r in zip(shown["shown"], served):
            self.assertEqual(rec["account"], r["account"])
            self.assertEqual(rec["response_ids"], r["token_ids"])
            self.assertEqual(rec["prompt_ids"], r["prompt_token_ids"][-3:])
            self.assertEqual(rec["tokenizer"], "gguf:tiny-llama.gguf")
        # The token ids themselves: every response carries the provider signal and its account.
        for account, rs in recs.items():
            for r in rs:
                d = tracemark.detect_ids(self.master, r["prompt_token_ids"] + r["token_ids"],
                                         self.vocab, account_limit=100,
                                         score_from=len(r["prompt_token_ids"]))
                self.assertLess(d["p_value"], 1e-10, d)
                self.assertIn(d["attributed_account"], (None, account), d)
        # From the text, as an investigator would have it: re-tokenised with the model's tokenizer.
        path = self.write("harvest.jsonl", recs[42] + recs[7])
        got = self.scan(path)
        self.assertEqual(got["totals"]["documents"], 8)
        self.assertEqual(got["totals"]["documents_flagged"], 8)
        # Documents come back in input order: four of account 42, then four of account 7. Every
        # attribution made is the right account, and half or more of the documents (500 tokens
        # each; 6-8 of 8 over five seeds here) get one.
        accounts = [d["account"] for d in got["documents"]]
        for i, a in enumerate(accounts):
            self.assertIn(a, (None, 42 if i < 4 else 7), accounts)
        self.assertGreaterEqual(sum(a is not None for a in accounts), 4, accounts)
        print(f"\nscan of 8 watermarked responses: {got['totals']['documents_flagged']} flagged, "
              f"largest p {max(d['p_value'] for d in got['documents']):.3g}, attributed "
              f"{sum(a is not None for a in accounts)}/8 {accounts}", file=sys.stderr)
        for d in got["documents"]:
            self.assertLess(d["p_value"], 1e-10, d)

    def test_the_same_loop_without_the_sampler_is_not_flagged(self):
        args = ["--no-watermark", "--max-tokens", "500", "--responses", "3", "--top-k", "100"]
        for p in PROMPTS:
            args += ["--prompt", p]
        recs = records(run_llama(args).stdout)
        got = self.scan(self.write("plain.jsonl", recs))
        self.assertEqual(got["totals"]["documents"], 6)
        self.assertEqual(got["totals"]["documents_flagged"], 0)
        for d in got["documents"]:
            self.assertIsNone(d["account"])
            self.assertGreater(d["p_value"], 1e-4)
        print(f"\nscan of 6 plain responses: smallest p "
              f"{min(d['p_value'] for d in got['documents']):.3g}", file=sys.stderr)

    def test_gumbel_choice_through_llama_cpp_dist(self):
        """A sampling scheme picks the token itself; llama.cpp's dist sampler must return it,
        whatever its seed: two seeds give the same response, and it is detected."""
        outs = []
        for seed in ("1", "2"):
            r = run_llama(["--key", self.key_path, "--scheme", "gumbel", "--account", "42",
                           "--prompt", PROMPTS[0], "--max-tokens", "150", "--seed", seed])
            outs.append(records(r.stdout)[0])
        # Positions the scheme did not decide (account layer, short or repeated contexts) are
        # drawn by dist, so the two responses agree only while every draw is the scheme's.
        prompt = outs[0]["prompt_token_ids"]
        d = tracemark.detect_ids(self.master, prompt + outs[0]["token_ids"], self.vocab,
                                 scheme="gumbel", account_limit=100, score_from=len(prompt))
        self.assertLess(d["p_value"], 1e-10, d)
        got = self.scan(self.write("gumbel.jsonl", outs[:1]), scheme="gumbel")
        self.assertEqual(got["totals"]["documents_flagged"], 1)

    def test_bad_input_is_refused_with_a_reason(self):
        cases = [
            (["--model", __file__, "--no-watermark", "--prompt", "x"], "cannot load model"),
            (["--prompt", "x"], "master key is required"),
            (["--key", os.path.join(self.tmp.name, "absent.key"), "--prompt", "x"], "key file"),
            (["--no-watermark"], "give --prompt"),
            (["--no-watermark", "--prompt", "x", "--max-tokens", "5000"], "context"),
            (["--key", self.key_path, "--account", str(1 << 40), "--prompt", "x"], "account id"),
            (["--no-watermark", "--account", "3", "--prompt", "x"], "--account needs"),
        ]
        for args, message in cases:
            if args[0] == "--model":
                cmd = [os.environ["TRACEMARK_LLAMA_BIN"]] + args
                r = subprocess.run(cmd, capture_output=True, text=True)
            else:
                r = run_llama(args, check=False)
            self.assertEqual(r.returncode, 1, (args, r.stderr))
            self.assertIn(message, r.stderr, args)
            self.assertEqual(r.stdout, "", args)

    def test_a_configuration_for_another_vocabulary_is_refused(self):
        r = run_llama(["--key", self.key_path, "--watermark", "vocab=32000", "--prompt", "Hi"],
                      check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("vocabulary", r.stderr)
        self.assertEqual(r.stdout, "")


if __name__ == "__main__":
    unittest.main()
