#!/usr/bin/env python3
"""PyTorch reference for `reel bench video --arch stts`: the same STTS video encoder as reel's
tasks.STTSClassifier (the video VLM's vision side: per-frame ViT blocks on patch tokens, 3x3
attention pooling into group tokens, a time embedding; with pruning, the STTS scorer, a video-wide
block whose keys are biased by log(score), top-k pruning with frame 0 kept, the remaining
video-wide blocks on the kept tokens), a final LayerNorm, mean pooling and a linear classifier;
loss = cross-entropy + 0.5 x the STTS auxiliary loss. Prints one JSON line like bench/vit_torch.py.

Usage: python3 bench/stts_torch.py FRAMES SIZE PATCH GROUP DIM LAYERS HEADS SCORE_AFTER KEEP MODE BATCH CLASSES WARM STEPS [DEVICE [PRECISION]]
  MODE: none or stts; KEEP: the kept share of the group tokens (stts).
"""
import json
import math
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from vit_torch import measure, Block

MIN_SCORE = math.exp(-2)


class STTSClassifier(nn.Module):
    def __init__(self, frames, size, patch, group, d, layers, heads, score_after, keep, mode, classes):
        super().__init__()
        self.patch, self.group, self.grid = patch, group, size // patch
        self.score_after, self.mode = score_after, mode
        self.groups = (self.grid // group) ** 2
        n = frames * self.groups
        self.k = n if mode == "none" else min(n, max(self.groups, math.ceil(keep * n)))
        self.embed = nn.Linear(patch * patch * 3, d)
        self.pos = nn.Parameter(torch.randn(self.grid ** 2, d) * 0.02)
        self.blocks = nn.ModuleList([Block(d, heads) for _ in range(layers)])
        self.key = nn.Linear(d, d, bias=False)
        self.value = nn.Linear(d, d)
        self.query = nn.Parameter(torch.randn(d) * 0.02)
        self.time = nn.Parameter(torch.randn(frames, 1, d) * 0.02)
        if mode == "stts":
            self.fc1, self.fc2 = nn.Linear(2 * d, d), nn.Linear(d, 1)
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, classes)

    def forward(self, vid):  # vid [B, T, S, S, 3]
        b, t, s, _, c = vid.shape
        p, g, n = self.patch, self.group, self.grid // self.group
        x = vid.reshape(b * t, s // p, p, s // p, p, c).permute(0, 1, 3, 2, 4, 5).reshape(b * t, -1, p * p * c)
        x = self.embed(x * 2 - 1) + self.pos
        for blk in self.blocks[: self.score_after]:
            x = blk(x)
        d = x.shape[-1]
        y = x.reshape(b * t, n, g, n, g, d).permute(0, 1, 3, 2, 4, 5).reshape(b * t, n * n, g * g, d)
        w = torch.softmax(self.key(y) @ self.query / math.sqrt(d), -1)  # [B*T, G, g*g]
        x = (w.unsqueeze(-1) * self.value(y)).sum(2).reshape(b, t, n * n, d) + self.time
        bias, aux, scores = None, 0.0, None
        if self.mode == "stts":
            prev, cur = x[:, :-1], x[:, 1:]
            raw = torch.sigmoid(self.fc2(F.gelu(self.fc1(torch.cat([prev, cur], -1)))).squeeze(-1))
            lo = raw.detach().amin(dim=(1, 2), keepdim=True)
            hi = raw.detach().amax(dim=(1, 2), keepdim=True)
            norm = (raw - lo) / (hi - lo + 1e-6) * (1 - MIN_SCORE) + MIN_SCORE
            scores = torch.cat([torch.ones_like(norm[:, :1]), norm], 1).reshape(b, -1)
            bias = scores.log()
            target = (1 - (F.normalize(prev, dim=-1) * F.normalize(cur, dim=-1)).sum(-1)).detach()
            aux = 0.5 * ((raw - target) ** 2).mean()
        x = x.reshape(b, t * n * n, d)
        x = self.blocks[self.score_after](x, key_bias=bias)
        if self.mode == "stts":
            first = (torch.arange(x.shape[1], device=x.device) < self.groups).to(scores.dtype)
            keep = (scores.detach() + 2 * first).topk(self.k, dim=1).indices.sort(dim=1).values
            x = x.gather(1, keep[..., None].expand(-1, -1, d))
        for blk in self.blocks[self.score_after + 1:]:
            x = blk(x)
        return self.head(self.ln(x).mean(1)), aux


def main():
    a = sys.argv[1:]
    frames, size, patch, group, d, layers, heads, score_after = map(int, a[:8])
    keep, mode = float(a[8]), a[9]
    batch, classes, warm, steps = map(int, a[10:14])
    device = a[14] if len(a) > 14 else "cpu"
    precision = a[15] if len(a) > 15 else "f32"

    def build():
        model = STTSClassifier(frames, size, patch, group, d, layers, heads, score_after, keep, mode, classes)
        return model, torch.rand(batch, frames, size, size, 3), torch.randint(0, classes, (batch,))

    print(json.dumps(measure(build, device, precision, warm, steps)))


if __name__ == "__main__":
    main()
