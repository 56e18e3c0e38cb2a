#!/usr/bin/env python3
"""The GPU variant of the distillation experiment (docs/distillation.md): a small transformer
student trained with PyTorch on what `distill_study --export DIR` wrote, for each watermarked share.

For each share it trains a decoder-only transformer on train-SHARE.u32 (the cluster's harvested
answers mixed with clean text, documents separated by 0xFFFFFFFF), then writes what the verifier
tests, from the student alone:
  - whitebox-SHARE.u32: at each exported window (h token ids), the student's most likely next
    token given the window only (a function of the student and the window, so under the null it
    is green with probability gamma): h + 1 ids per window;
  - answers-SHARE.u32: its answers to the exported prompts (suite prefixes), sampled at
    temperature 1 from the 64 most likely tokens: [prompt length, prompt, answer length, answer].
Then `distill_study --student-from DIR` (same settings and key as the export) runs every test.

  build-rel/studies/distill_study --key K --export out/gpu ...   # on this machine
  python3 scripts/gpu_student.py out/gpu --device cuda         # on the GPU machine
  build-rel/studies/distill_study --key K --student-from out/gpu ...

Needs PyTorch (Debian's python3-torch on CPU; the device machine's with CUDA). No downloads.
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SEP = 0xFFFFFFFF


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.ln1 = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x, mask):
        h = self.ln1(x)
        x = x + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
        return x + self.mlp(self.ln2(x))


class Student(nn.Module):
    def __init__(self, vocab, d, layers, heads, context):
        super().__init__()
        self.context = context
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(context, d)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)
        self.head.weight = self.tok.weight  # tied
        for m in self.modules():  # GPT-2's initialisation
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward(self, ids):
        t = ids.shape[1]
        mask = torch.triu(torch.full((t, t), float("-inf"), device=ids.device), diagonal=1)
        x = self.tok(ids) + self.pos(torch.arange(t, device=ids.device))
        for b in self.blocks:
            x = b(x, mask)
        return self.head(self.ln(x))


def read_u32(path):
    return np.fromfile(path, dtype="<u4")


def train(args, meta, share, device):
    vocab = meta["vocab_size"]
    sep_id = vocab  # the separator gets its own embedding
    stream = read_u32(os.path.join(args.dir, f"train-{share:g}.u32")).astype(np.int64)
    stream[stream == SEP] = sep_id
    data = torch.from_numpy(stream)
    model = Student(vocab + 1, args.d, args.layers, args.heads, args.context).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.1)
    steps = args.steps or max(1, int(args.epochs * len(stream) / (args.batch * args.context)))
    gen = torch.Generator().manual_seed(args.seed)
    model.train()
    start = time.time()
    amp = device.type == "cuda"
    for step in range(steps):
        lr = args.lr * min(1.0, (step + 1) / 100) * 0.5 * (1 + math.cos(math.pi * step / steps))
        for g in opt.param_groups:
            g["lr"] = lr
        starts = torch.randint(0, len(data) - args.context - 1, (args.batch,), generator=gen)
        batch = torch.stack([data[s:s + args.context + 1] for s in starts.tolist()]).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            logits = model(batch[:, :-1])
            loss = F.cross_entropy(logits.float().reshape(-1, vocab + 1), batch[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % max(1, steps // 10) == 0 or step == steps - 1:
            print(f"  share {share:g}: step {step + 1}/{steps}, loss {loss.item():.3f}, "
                  f"{time.time() - start:.0f} s", file=sys.stderr, flush=True)
    model.eval()
    return model


@torch.no_grad()
def white_box(args, meta, share, model, device):
    h = meta["h"]
    vocab = meta["vocab_size"]
    windows = read_u32(os.path.join(args.dir, f"windows-{share:g}.u32")).astype(np.int64)
    windows = windows.reshape(-1, h)
    out = np.zeros((len(windows), h + 1), dtype="<u4")
    for i in range(0, len(windows), args.eval_batch):
        w = torch.from_numpy(windows[i:i + args.eval_batch]).to(device)
        x = torch.cat([torch.full((len(w), 1), vocab, device=device), w], dim=1)  # SEP, window
        logits = model(x)[:, -1, :vocab].float()
        out[i:i + len(w), :h] = windows[i:i + len(w)]
        out[i:i + len(w), h] = logits.argmax(dim=1).cpu().numpy()
    out.tofile(os.path.join(args.dir, f"whitebox-{share:g}.u32"))
    return len(windows)


@torch.no_grad()
def answers(args, meta, share, model, device):
    vocab = meta["vocab_size"]
    raw = read_u32(os.path.join(args.dir, "prompts.u32"))
    prompts, pos = [], 0
    while pos < len(raw):
        n = int(raw[pos])
        prompts.append(raw[pos + 1:pos + 1 + n].astype(np.int64))
        pos += 1 + n
    gen = torch.Generator(device=device).manual_seed(args.seed + 1)
    records = []
    for i in range(0, len(prompts), args.eval_batch):
        group = prompts[i:i + args.eval_batch]
        width = max(len(p) for p in group)
        # Left-padded with the separator, which also stands before every document in training.
        x = torch.full((len(group), width + 1), vocab, dtype=torch.long)
        for j, p in enumerate(group):
            x[j, width + 1 - len(p):] = torch.from_numpy(p)
        x = x.to(device)
        new = []
        for _ in range(meta["tokens"]):
            logits = model(x[:, -model.context:])[:, -1, :vocab].float()
            top, idx = logits.topk(64, dim=1)
            choice = torch.multinomial(F.softmax(top, dim=1), 1, generator=gen)
            token = idx.gather(1, choice)
            new.append(token)
            x = torch.cat([x, token], dim=1)
        new = torch.cat(new, dim=1).cpu().numpy()
        for j, p in enumerate(group):
            records.append(np.concatenate([[len(p)], p, [meta["tokens"]], new[j]]))
    np.concatenate(records).astype("<u4").tofile(os.path.join(args.dir, f"answers-{share:g}.u32"))
    return len(records)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--shares", help="comma-separated subset of the exported shares")
    ap.add_argument("--d", type=int, default=384)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--context", type=int, default=256)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--epochs", type=float, default=8)
    ap.add_argument("--steps", type=int, default=0, help="overrides --epochs")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--eval-batch", type=int, default=256)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    meta = json.load(open(os.path.join(args.dir, "meta.json")))
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    shares = [float(s) for s in args.shares.split(",")] if args.shares else meta["shares"]
    report = {"device": str(device), "torch": torch.__version__, "args": vars(args), "shares": []}
    if device.type == "cuda":
        report["gpu"] = torch.cuda.get_device_name(0)
    for share in shares:
        t0 = time.time()
        model = train(args, meta, share, device)
        t1 = time.time()
        n_windows = white_box(args, meta, share, model, device)
        n_answers = answers(args, meta, share, model, device)
        t2 = time.time()
        params = sum(p.numel() for p in model.parameters())
        report["shares"].append({"share": share, "parameters": params, "train_s": t1 - t0,
                                 "test_s": t2 - t1, "windows": n_windows, "answers": n_answers})
        print(f"share {share:g}: {params:,} parameters, trained in {t1 - t0:.0f} s, "
              f"{n_windows} windows and {n_answers} answers in {t2 - t1:.0f} s", file=sys.stderr)
    json.dump(report, open(os.path.join(args.dir, "gpu_student.json"), "w"), indent=2)


if __name__ == "__main__":
    main()
