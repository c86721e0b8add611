#!/usr/bin/env python3
"""PyTorch reference for `reel bench video`: the same video classifier as reel's
tasks.VideoClassifier (ViViT tubelet embedding with learned positions, the TrajViT2/ViViT encoder
tower: input projection, a CLS token, pre-norm blocks with a key-padding mask, final LayerNorm, the
CLS output projected to the classes without bias), trained with AdamW on the same shapes. Prints
one JSON line like bench/vit_torch.py.

Usage: python3 bench/video_torch.py FRAMES SIZE TUBELET PATCH DIM LAYERS HEADS BATCH CLASSES WARM STEPS [DEVICE [PRECISION]]
"""
import json
import sys

import torch
import torch.nn as nn

from vit_torch import measure, Block  # same block (with a key mask), timing and memory accounting


class VideoClassifier(nn.Module):
    def __init__(self, frames, size, tubelet, patch, d, layers, heads, classes):
        super().__init__()
        self.t, self.p = tubelet, patch
        n = (frames // tubelet) * (size // patch) ** 2
        self.embed = nn.Linear(tubelet * patch * patch * 3, d)
        self.pos = nn.Parameter(torch.randn(n, d) * 0.02)
        self.inp = nn.Linear(d, d)
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.blocks = nn.ModuleList([Block(d, heads) for _ in range(layers)])
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, classes, bias=False)

    def forward(self, vid):  # vid [B, T, S, S, 3]
        b, t, s, _, c = vid.shape
        tt, p = self.t, self.p
        x = vid.view(b, t // tt, tt, s // p, p, s // p, p, c).permute(0, 1, 3, 5, 2, 4, 6, 7)
        x = x.reshape(b, -1, tt * p * p * c)
        x = self.embed(x * 2 - 1) + self.pos
        x = self.inp(x)
        x = torch.cat([self.cls.expand(b, 1, -1), x], 1)
        valid = torch.ones(b, x.shape[1], dtype=torch.bool, device=x.device)
        for blk in self.blocks:
            x = blk(x, valid)
        return self.head(self.ln(x)[:, 0])


def main():
    frames, size, tubelet, patch, d, layers, heads, batch, classes, warm, steps = map(int, sys.argv[1:12])
    device = sys.argv[12] if len(sys.argv) > 12 else "cpu"
    precision = sys.argv[13] if len(sys.argv) > 13 else "f32"

    def build():
        model = VideoClassifier(frames, size, tubelet, patch, d, layers, heads, classes)
        x = torch.rand(batch, frames, size, size, 3)
        y = torch.randint(0, classes, (batch,))
        return model, x, y

    print(json.dumps(measure(build, device, precision, warm, steps)))


if __name__ == "__main__":
    main()
