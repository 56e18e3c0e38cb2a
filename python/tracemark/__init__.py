"""tracemark: per-account watermarks in a model's sampling loop, and their detection.

The classes come from the C++ library through a pybind11 module:

    import numpy as np, tracemark
    master = tracemark.Key.from_file("tracemark.key")        # 32 bytes, mode 0600
    wm = tracemark.Watermarker(master, vocab_size=100277)     # once per process
    acct = wm.for_account(42)                                 # once per request
    state = tracemark.SequenceState()                         # once per response
    step = wm.process_dense(acct, context_ids, logits, state) # logits: float32, in place
    ...
    wm.set_ledger(tracemark.Ledger("ledger/"), "hf:qwen3")     # once: the serving ledger
    wm.end_response(acct, prompt_ids, response_ids, state)    # at the end of each response

Logits are modified in place, without a copy: pass a C-contiguous float32 numpy array, or a CPU
torch tensor's ``.numpy()`` view. ``tracemark.hf`` has a Hugging Face ``LogitsProcessor`` and
``tracemark.vllm`` a vLLM (v1) logits processor. Keys never cross into Python: a ``Key`` shows its
public id and commitment only.
"""

from ._tracemark import (  # noqa: F401
    __version__,
    AccountKeys,
    Key,
    Ledger,
    SequenceState,
    Tokenizer,
    Watermarker,
    detect_ids,
    input_files,
    new_key_file,
    scan,
    scan_merge,
    scan_partition,
)

__all__ = [
    "__version__",
    "AccountKeys",
    "Key",
    "Ledger",
    "SequenceState",
    "Tokenizer",
    "Watermarker",
    "detect_ids",
    "input_files",
    "new_key_file",
    "scan",
    "scan_merge",
    "scan_partition",
]
