"""A faithful stand-in for vLLM's v1 engine loop around logits processors, for testing
tracemark.vllm where vLLM itself cannot be installed (no PyPI here).

It keeps a persistent batch as vLLM's InputBatch does: finished requests leave holes, new
requests fill the lowest holes first and are appended otherwise, the batch is then condensed by
one-way moves from the end into the holes, and requests are sometimes swapped; each step the
processor's update_state receives a BatchUpdate (removed, added, moved, in that order) or None when
membership did not change, and apply receives the batch's logits, one row per slot. Each added
request hands over a live reference to its output-token list, which the driver appends to after
sampling, as vLLM does.
"""

import enum
import random
from dataclasses import dataclass, field

import torch


class MoveDirectionality(enum.Enum):
    UNIDIRECTIONAL = enum.auto()
    SWAP = enum.auto()


@dataclass(frozen=True)
class BatchUpdate:
    batch_size: int
    removed: list
    added: list
    moved: list


@dataclass
class SamplingParams:
    max_tokens: int = 16
    seed: int = 0
    extra_args: dict = None


@dataclass
class Request:
    rid: int
    prompt: list
    params: SamplingParams
    arrival: int
    output: list = field(default_factory=list)


def run(model, processor, requests, swap_rate=0.2, seed=0, dtype=torch.float32):
    """Serves `requests` to completion; returns {rid: output ids}. The model is run per request
    (its own key/value cache), so a request's logits do not depend on its batch neighbours."""
    rng = random.Random(seed)
    pending = sorted(requests, key=lambda r: r.arrival)
    slots = []  # index -> Request or None
    caches, logits_of, gens = {}, {}, {}
    step = 0
    done = {}
    while pending or any(s is not None for s in slots):
        removed, added, moved = [], [], []
        for i, r in enumerate(slots):
            if r is not None and len(r.output) >= r.params.max_tokens:
                done[r.rid] = list(r.output)
                slots[i] = None
                removed.append(i)
        while pending and pending[0].arrival <= step:
            r = pending.pop(0)
            processor.validate_params(r.params)
            hole = next((i for i, s in enumerate(slots) if s is None), None)
            if hole is None:
                hole = len(slots)
                slots.append(None)
            slots[hole] = r
            added.append((hole, r.params, r.prompt, r.output))
            logits_of[r.rid], caches[r.rid] = model(torch.tensor([r.prompt]))
            gens[r.rid] = torch.Generator().manual_seed(r.params.seed)
        # Condense: the last occupied slot moves into the lowest hole.
        while True:
            holes = [i for i, s in enumerate(slots) if s is None]
            last = max((i for i, s in enumerate(slots) if s is not None), default=-1)
            if not holes or holes[0] > last:
                break
            slots[holes[0]], slots[last] = slots[last], None
            moved.append((last, holes[0], MoveDirectionality.UNIDIRECTIONAL))
        while slots and slots[-1] is None:
            slots.pop()
        if len(slots) >= 2 and rng.random() < swap_rate:
            a, b = rng.sample(range(len(slots)), 2)
            slots[a], slots[b] = slots[b], slots[a]
            moved.append((a, b, MoveDirectionality.SWAP))
        if removed or added or moved:
            processor.update_state(BatchUpdate(len(slots), removed, added, moved))
        else:
            processor.update_state(None)
        if slots:
            batch = torch.cat([logits_of[r.rid] for r in slots]).to(dtype)
            batch = processor.apply(batch)
            for i, r in enumerate(slots):
                probs = torch.softmax(batch[i].float(), dim=-1)
                tok = int(torch.multinomial(probs, 1, generator=gens[r.rid]))
                r.output.append(tok)  # the live list the processor holds
                if len(r.output) < r.params.max_tokens:
                    logits_of[r.rid], caches[r.rid] = model(torch.tensor([[tok]]), caches[r.rid])
        step += 1
    return done
