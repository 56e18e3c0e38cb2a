"""A small decoder-only transformer the Python tests and benchmarks build themselves (no
downloads): pre-norm blocks, causal self-attention with a key/value cache, tied output head.
Randomly initialised from a seed, it gives next-token distributions with real entropy over a real
tokenizer's vocabulary, which is all a sampling-loop watermark needs to be exercised.

    model = TinyLM(vocab_size=100277, seed=0)
    logits, cache = model(ids)                 # ids: B x T; logits: B x vocab for the last position
    logits, cache = model(next_ids, cache)     # next_ids: B x 1

``generate`` is a Hugging Face ``generate``-style sampling loop: logits processors are called as
``processor(input_ids, scores)`` at every step, then temperature, softmax and multinomial sampling.
"""

import math

import torch
from torch import nn


class _Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x, past):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        shape = (b, t, self.heads, d // self.heads)
        q, k, v = (z.view(shape).transpose(1, 2) for z in (q, k, v))
        if past is not None:
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(d // self.heads)
        total = k.shape[2]
        mask = torch.ones(t, total, dtype=torch.bool).tril(diagonal=total - t)
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, d)
        x = x + self.proj(y)
        return x + self.mlp(self.ln2(x)), (k, v)


class TinyLM(nn.Module):
    def __init__(self, vocab_size, dim=64, layers=2, heads=4, max_len=2048, seed=0,
                 logit_scale=3.0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.vocab_size = vocab_size
        self.embed = nn.Embedding(vocab_size, dim)
        self.pos = nn.Embedding(max_len, dim)
        self.blocks = nn.ModuleList(_Block(dim, heads) for _ in range(layers))
        self.ln = nn.LayerNorm(dim)
        self.logit_scale = logit_scale
        with torch.no_grad():
            for p in self.parameters():
                if p.dim() > 1:
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.5 / math.sqrt(p.shape[-1]))
        self.eval()

    @torch.no_grad()
    def forward(self, ids, cache=None):
        start = 0 if cache is None else cache[0][0].shape[2]
        positions = torch.arange(start, start + ids.shape[1])
        x = self.embed(ids) + self.pos(positions)
        new_cache = []
        for i, block in enumerate(self.blocks):
            x, kv = block(x, None if cache is None else cache[i])
            new_cache.append(kv)
        h = self.ln(x[:, -1, :])
        # Tied head, scaled so that the next-token distributions are neither flat nor peaked.
        logits = (h @ self.embed.weight.T) * (self.logit_scale / math.sqrt(h.shape[-1]))
        return logits.float().contiguous(), new_cache


@torch.no_grad()
def generate(model, input_ids, max_new_tokens, logits_processor=(), temperature=1.0,
             generator=None):
    """Samples max_new_tokens after input_ids (B x T); returns B x (T + max_new_tokens)."""
    ids = input_ids
    logits, cache = model(ids)
    for step in range(max_new_tokens):
        scores = logits
        for proc in logits_processor:
            scores = proc(ids, scores)
        probs = torch.softmax(scores / temperature, dim=-1)
        nxt = torch.multinomial(probs, 1, generator=generator)
        ids = torch.cat([ids, nxt], dim=1)
        if step + 1 < max_new_tokens:
            logits, cache = model(nxt, cache)
    return ids
