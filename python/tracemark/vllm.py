"""A vLLM (v1) logits processor that watermarks every request's tokens for its account.

vLLM builds the processor itself, once per engine, so it is configured through the environment:

    TRACEMARK_KEY_FILE   the master key file (32 bytes, mode 0600), or
    TRACEMARK_KEY_ENV    the name of a variable holding the key as 64 hex digits
    TRACEMARK_SCHEME     kgw (default), gumbel or synthid
    TRACEMARK_PARAMS     extra watermark parameters, "key=value,..." (tracemark watermark docs)
    TRACEMARK_EPOCH      the key epoch (default 0)
    TRACEMARK_CANARY_TOKENIZER   the served model's tokenizer ("hf:/path/tokenizer.json",
                         "tiktoken:cl100k_base", ...): apply the account's canary phrasings
                         before the watermark (unset: no canaries)
    TRACEMARK_REQUIRE_ACCOUNT=1   refuse requests that carry no account
    TRACEMARK_LEDGER_DIR the serving ledger's directory (docs/ledger.md): each request's record
                         (account, prompt tail, output ids) is written when it leaves the batch
    TRACEMARK_LEDGER_TOKENIZER   the tokenizer spec recorded with it (default:
                         TRACEMARK_CANARY_TOKENIZER; one of them is required with the ledger)

and loaded with ``LLM(model, logits_processors=[TracemarkVllmProcessor])`` (or the
``vllm.logits_processors`` entry point). Each request names its account in
``SamplingParams(extra_args={"tracemark_account": 42})``; a request without one is served
anonymously (provider layer only) unless TRACEMARK_REQUIRE_ACCOUNT is set.

The processor follows vLLM's persistent-batch contract: ``update_state`` receives the requests
removed from, added to and moved within the batch (in that order), each added request with a live
reference to its list of output tokens; ``apply`` then watermarks row i of the B x V logits for
the request in slot i through the serving chain (canary choice, then the watermark layers), its
context being the last ``history_width`` ids of prompt and output. Rows are processed in one
batched call; logits on a GPU or in half precision go through a float32 CPU copy.

A request leaves the batch when it finishes or is preempted; the processor then ends its response
(``Watermarker.end_response``), which writes its record when the watermarker has a ledger. A
request preempted and resumed is recorded at each departure with the ids so far; the ledger's
window index counts each (window, account) once, so this adds nothing to attribution.

It imports vLLM when vLLM is installed and otherwise defines the same interface, so that it can be
driven (and tested) without vLLM.
"""

import os

import numpy as np

from . import _tracemark as _tm

try:  # pragma: no cover - depends on the environment
    from vllm.v1.sample.logits_processor import LogitsProcessor as _Base
except ImportError:  # vLLM absent: the interface is duck-typed
    _Base = object

__all__ = ["ACCOUNT_ARG", "TracemarkVllmProcessor"]

ACCOUNT_ARG = "tracemark_account"


def _account_of(params):
    extra = getattr(params, "extra_args", None) or {}
    account = extra.get(ACCOUNT_ARG)
    if account is None:
        return None
    if isinstance(account, bool) or not isinstance(account, (int, np.integer)) or account < 0:
        raise ValueError(f"extra_args[{ACCOUNT_ARG!r}] must be a non-negative integer account id, "
                         f"not {account!r}")
    return int(account)


def _env_watermarker(vocab_size):
    key_file = os.environ.get("TRACEMARK_KEY_FILE")
    key_env = os.environ.get("TRACEMARK_KEY_ENV")
    if key_file:
        master = _tm.Key.from_file(key_file)
    elif key_env:
        master = _tm.Key.from_env(key_env)
    else:
        raise ValueError(
            "tracemark: set TRACEMARK_KEY_FILE (a master key file) or TRACEMARK_KEY_ENV")
    epoch = int(os.environ.get("TRACEMARK_EPOCH", "0"))
    wm = _tm.Watermarker(master, vocab_size=vocab_size, epoch=epoch,
                         scheme=os.environ.get("TRACEMARK_SCHEME", "kgw"),
                         params=os.environ.get("TRACEMARK_PARAMS", ""),
                         canary=os.environ.get("TRACEMARK_CANARY_TOKENIZER") or None)
    ledger = None
    if os.environ.get("TRACEMARK_LEDGER_DIR"):
        spec = (os.environ.get("TRACEMARK_LEDGER_TOKENIZER")
                or os.environ.get("TRACEMARK_CANARY_TOKENIZER"))
        if not spec:
            raise ValueError("tracemark: TRACEMARK_LEDGER_DIR needs TRACEMARK_LEDGER_TOKENIZER "
                             "(the served model's tokenizer spec, recorded with each response)")
        ledger = _tm.Ledger(os.environ["TRACEMARK_LEDGER_DIR"])
        wm.set_ledger(ledger, spec)
    return wm, ledger


class _Request:
    __slots__ = ("account", "keys", "prompt", "output", "state")

    def __init__(self, account, keys, prompt, output):
        self.account = account
        self.keys = keys
        self.prompt = list(prompt or ())
        self.output = output  # vLLM's live list of this request's output tokens
        self.state = _tm.SequenceState()


class TracemarkVllmProcessor(_Base):
    """The vLLM v1 ``LogitsProcessor``; see the module's docstring."""

    @classmethod
    def validate_params(cls, sampling_params):
        account = _account_of(sampling_params)
        if account is None and os.environ.get("TRACEMARK_REQUIRE_ACCOUNT") == "1":
            raise ValueError(f"tracemark: this server requires extra_args[{ACCOUNT_ARG!r}]")

    def __init__(self, vllm_config, device, is_pin_memory, watermarker=None):
        """vLLM calls it with (vllm_config, device, is_pin_memory); `watermarker` (a
        tracemark.Watermarker) replaces the environment's configuration when given."""
        self._ledger = None  # the environment's ledger, kept open while the processor lives
        if watermarker is None:
            vocab = vllm_config.model_config.get_vocab_size()
            watermarker, self._ledger = _env_watermarker(vocab)
        self._wm = watermarker
        self._h = watermarker.history_width
        self._vocab = watermarker.vocab_size
        self._device = device
        self._slots = {}  # batch index -> _Request
        self._keys = {}  # account -> AccountKeys, shared by that account's requests
        self.last_results = []

    def is_argmax_invariant(self):
        # KGW's bias and the sampling schemes' keyed choice both change the argmax.
        return False

    def _keys_for(self, account):
        if account is None:
            return None
        keys = self._keys.get(account)
        if keys is None:
            keys = self._keys[account] = self._wm.for_account(account)
        return keys

    def update_state(self, batch_update):
        if batch_update is None:
            return  # no change of membership; output lists grew in place
        for index in batch_update.removed:
            req = self._slots.pop(index, None)
            if req is not None:  # its record, when the watermarker has a ledger
                self._wm.end_response(req.keys, np.asarray(req.prompt, np.int32),
                                      np.asarray(req.output, np.int32), req.state)
        for index, params, prompt, output in batch_update.added:
            account = _account_of(params)
            self._slots[index] = _Request(account, self._keys_for(account), prompt, output)
        for a, b, direction in batch_update.moved:
            name = getattr(direction, "name", direction)
            ra, rb = self._slots.pop(a, None), self._slots.pop(b, None)
            if ra is not None:
                self._slots[b] = ra
            if name == "SWAP" and rb is not None:
                self._slots[a] = rb
        # Accounts no request uses any more are forgotten (their keys are zeroed when freed).
        live = {r.account for r in self._slots.values()}
        for account in [a for a in self._keys if a not in live]:
            del self._keys[account]

    def apply(self, logits):
        import torch

        rows = sorted(i for i in self._slots if i < logits.shape[0])
        if not rows:
            self.last_results = []
            return logits
        width = logits.shape[1]
        if width < self._vocab:
            raise ValueError(f"logits have {width} columns; the watermark's vocabulary is "
                             f"{self._vocab}")
        contexts = np.full((len(rows), self._h), -1, dtype=np.int32)
        for j, i in enumerate(rows):
            req = self._slots[i]
            tail = req.output[-self._h:]
            if len(tail) < self._h:
                tail = req.prompt[len(req.prompt) - (self._h - len(tail)):] + list(tail)
            contexts[j, self._h - len(tail):] = tail
        in_place = (logits.device.type == "cpu" and logits.dtype == torch.float32
                    and logits.is_contiguous() and width == self._vocab
                    and rows == list(range(logits.shape[0])))
        if in_place:
            work = logits
        else:
            index = torch.tensor(rows, device=logits.device)
            work = logits.index_select(0, index)[:, : self._vocab].to("cpu", torch.float32)
            work = work.contiguous()
        accounts = [self._slots[i].keys for i in rows]
        states = [self._slots[i].state for i in rows]
        results = self._wm.process_batch(accounts, contexts, work.numpy(), states)
        if not in_place:
            out = work.to(logits.device, logits.dtype)
            logits[index, : self._vocab] = out
            if width > self._vocab:  # padded columns: never the keyed choice
                chosen = [j for j, r in enumerate(results) if r["token_chosen"]]
                if chosen:
                    logits[index[chosen], self._vocab:] = float("-inf")
        self.last_results = [(i, r) for i, r in zip(rows, results)]
        return logits
