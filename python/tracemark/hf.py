"""A Hugging Face ``LogitsProcessor`` that watermarks every generated token for its account.

    from transformers import LogitsProcessorList
    from tracemark.hf import TracemarkLogitsProcessor
    proc = TracemarkLogitsProcessor(wm, accounts=[42, 7])   # one account per batch row
    model.generate(ids, logits_processor=LogitsProcessorList([proc]), do_sample=True)

The processor follows the ``transformers`` interface, ``__call__(input_ids, scores) -> scores``,
without importing ``transformers`` (so it also drives a plain PyTorch decode loop). Row b of the
batch is served to ``accounts[b]`` (``None``: anonymous, provider layer only); its context is the
last ``history_width`` ids of ``input_ids[b]``, prompt included (h, or 78 when the watermarker
applies canary phrasings: ``Watermarker(..., canary=tokenizer)``). Every row goes through the
serving chain, canary choice then watermark layers, as in every other engine adapter. With ``num_return_sequences`` or beams, give the
account of every row. Scores are changed in place when they are a contiguous float32 CPU tensor,
and copied through float32 otherwise (GPU, half precision). Sampling schemes (Gumbel, SynthID) set
every other logit to -inf so that any sampler after them returns the keyed choice.

With the serving ledger (``wm.set_ledger(tracemark.Ledger(dir), tokenizer_spec)``), end the
responses after ``generate`` so that each row's record is written before it is served:

    out = model.generate(ids, logits_processor=LogitsProcessorList([proc]), do_sample=True)
    proc.end_responses(ids.shape[1], out, pad_token_id=tokenizer.pad_token_id)
"""

import numpy as np

from ._tracemark import SequenceState

__all__ = ["TracemarkLogitsProcessor"]


class TracemarkLogitsProcessor:
    """Watermarks the next-token scores of each row for that row's account."""

    def __init__(self, watermarker, accounts):
        self._wm = watermarker
        self._h = watermarker.history_width
        self._vocab = watermarker.vocab_size
        self._keys = {}
        self.accounts = list(accounts)
        self._rows = None
        self._states = [SequenceState() for _ in self.accounts]

    def _account(self, account):
        if account is None:
            return None
        if account not in self._keys:
            self._keys[account] = self._wm.for_account(int(account))
        return self._keys[account]

    def reset(self, accounts=None):
        """Starts new responses (for the same accounts unless given)."""
        if accounts is not None:
            self.accounts = list(accounts)
        self._states = [SequenceState() for _ in self.accounts]

    def __call__(self, input_ids, scores):
        import torch

        batch, width = scores.shape
        if batch != len(self.accounts):
            raise ValueError(f"{batch} rows of scores but {len(self.accounts)} accounts")
        if width < self._vocab:
            raise ValueError(f"scores have {width} columns; the watermark's vocabulary is "
                             f"{self._vocab}")
        in_place = (scores.device.type == "cpu" and scores.dtype == torch.float32
                    and scores.is_contiguous())
        work = scores if in_place else scores.detach().to("cpu", torch.float32).contiguous()
        logits = work.numpy()
        take = min(self._h, input_ids.shape[1])
        contexts = np.full((batch, self._h), -1, dtype=np.int32)
        if take:  # only the ids the chain reads leave the device, not the whole history
            contexts[:, self._h - take:] = input_ids[:, -take:].detach().to("cpu").numpy()
        accounts = [self._account(a) for a in self.accounts]
        if width == self._vocab:
            results = self._wm.process_batch(accounts, contexts, logits, self._states)
        else:  # a padded vocabulary: each row's first vocab_size columns are one contiguous view
            results = []
            for b in range(batch):
                row = logits[b, : self._vocab]
                ctx = contexts[b][contexts[b] >= 0] if take < self._h else contexts[b]
                results.append(self._wm.process_dense(accounts[b], ctx, row, self._states[b]))
                if results[-1]["token_chosen"]:
                    logits[b, self._vocab:] = -np.inf
        if not in_place:
            scores.copy_(work.to(scores.device, scores.dtype))
        self.last_results = results
        return scores

    def end_responses(self, prompt_length, sequences, pad_token_id=None):
        """Ends every row's response: resets its state and, when the watermarker has a ledger,
        records what the row's account was served, the ids of ``sequences[b]`` after the first
        ``prompt_length`` (trailing ``pad_token_id`` dropped). Call it before serving them."""
        rows = np.asarray(sequences.detach().to("cpu") if hasattr(sequences, "detach")
                          else sequences, dtype=np.int64)
        if rows.ndim != 2 or rows.shape[0] != len(self.accounts):
            raise ValueError(f"sequences must be {len(self.accounts)} rows, one per account")
        if not 0 <= prompt_length <= rows.shape[1]:
            raise ValueError(f"prompt_length {prompt_length} is outside the sequences")
        for b, account in enumerate(self.accounts):
            response = rows[b, prompt_length:]
            if pad_token_id is not None:
                keep = len(response)
                while keep and response[keep - 1] == pad_token_id:
                    keep -= 1
                response = response[:keep]
            self._wm.end_response(self._account(account), rows[b, :prompt_length].astype(np.int32),
                                  response.astype(np.int32), self._states[b])
