#!/usr/bin/env python3
"""PyTorch reference for `reel bench video --arch trajvit2`: the same TrajViT2 classifier as reel's
tasks.TrajViTClassifier. TrajTok: a stride-s 3x3 conv stem, GELU, a residual 3x3 conv and
LayerNorm per frame; a Perceiver (K latents, cross-attention then a self-attention block per
layer) over the detached features; cosine logits between MLP-embedded latents and pixels with the
learned, clamped scale; soft masks (softmax over K); tokens = mask-weighted feature means plus a
linear motion descriptor (per frame: pixel share and centroid); a trajectory is active if it owns a
pixel. Then the video encoder tower over the active tokens (input projection, CLS, masked blocks,
LayerNorm, CLS projected to the classes). Prints one JSON line like bench/vit_torch.py.

Usage: python3 bench/trajvit_torch.py FRAMES SIZE STRIDE FEAT LATENTS GROUP_DIM PERCEIVER_LAYERS DIM LAYERS HEADS BATCH CLASSES WARM STEPS [DEVICE [PRECISION]]
"""
import json
import math
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from vit_torch import measure, Block


def mlp(d_in, hidden, d_out):
    return nn.Sequential(nn.Linear(d_in, hidden), nn.GELU(), nn.Linear(hidden, d_out))


class Cross(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.q, self.k, self.v, self.out = (nn.Linear(d, d) for _ in range(4))
        self.heads = heads

    def forward(self, q, kv):
        b, nq, d = q.shape
        nk, h = kv.shape[1], self.heads
        qq = self.q(q).view(b, nq, h, d // h).transpose(1, 2)
        kk = self.k(kv).view(b, nk, h, d // h).transpose(1, 2)
        vv = self.v(kv).view(b, nk, h, d // h).transpose(1, 2)
        a = torch.softmax(qq @ kk.transpose(-1, -2) / (d // h) ** 0.5, -1) @ vv
        return self.out(a.transpose(1, 2).reshape(b, nq, d))


class TrajViT(nn.Module):
    def __init__(self, frames, size, stride, c, k, dg, players, d, layers, heads, classes):
        super().__init__()
        self.frames, self.grid = frames, size // stride
        self.stem = nn.Conv2d(3, c, 3, stride, padding=1)
        self.conv = nn.Conv2d(c, c, 3, 1, padding=1)
        self.ln = nn.LayerNorm(c)
        self.latents = nn.Parameter(torch.randn(k, c) * 0.02)
        self.ln_kv = nn.LayerNorm(c)
        self.ln_q = nn.ModuleList([nn.LayerNorm(c) for _ in range(players)])
        self.cross = nn.ModuleList([Cross(c, heads) for _ in range(players)])
        self.self_blocks = nn.ModuleList([Block(c, heads, ratio=2) for _ in range(players)])
        self.latent_mlp, self.pixel_mlp = mlp(c, 2 * dg, dg), mlp(c, 2 * dg, dg)
        self.log_scale = nn.Parameter(torch.tensor(math.log(16.0)))
        self.motion = nn.Linear(3 * frames, c)
        g = self.grid
        ys, xs = torch.meshgrid(torch.arange(g), torch.arange(g), indexing="ij")
        coords = torch.stack([2 * (xs + 0.5) / g - 1, 2 * (ys + 0.5) / g - 1], -1).reshape(g * g, 2)
        self.register_buffer("coords", coords.float())
        self.inp = nn.Linear(c, d)
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.blocks = nn.ModuleList([Block(d, heads) for _ in range(layers)])
        self.ln_final = nn.LayerNorm(d)
        self.head = nn.Linear(d, classes, bias=False)

    def forward(self, vid):  # vid [B, T, S, S, 3]
        b, t, s, _, ch = vid.shape
        g = self.grid
        x = vid.reshape(b * t, s, s, ch).permute(0, 3, 1, 2) * 2 - 1
        x = F.gelu(self.stem(x))
        x = x + self.conv(F.gelu(x))
        feats = self.ln(x.permute(0, 2, 3, 1).reshape(b, t * g * g, -1))  # [B, N, C]
        fd = feats.detach()
        lat = self.latents.expand(b, -1, -1)
        kv = self.ln_kv(fd)
        for ln_q, cross, blk in zip(self.ln_q, self.cross, self.self_blocks):
            lat = lat + cross(ln_q(lat), kv)
            lat = blk(lat)
        e = F.normalize(self.latent_mlp(lat), dim=-1)
        u = F.normalize(self.pixel_mlp(fd), dim=-1)
        scale = torch.clamp(F.softplus(self.log_scale) + 1, max=20)
        logits = (e @ u.transpose(1, 2)) * scale  # [B, K, N]
        masks = torch.softmax(logits, 1)
        z = (masks @ feats) / (masks.sum(-1, keepdim=True) + 1e-6)
        k = masks.shape[1]
        m = masks.reshape(b, k, t, g * g)
        mass = m.sum(-1)
        centre = (m @ self.coords) / (mass[..., None] + 1e-6)
        motion = torch.cat([(mass / (g * g))[..., None], centre], -1).reshape(b, k, 3 * t)
        z = z + self.motion(motion)
        active = torch.zeros(b, k, device=vid.device).scatter_(1, logits.argmax(1), 1.0) > 0
        x = torch.cat([self.cls.expand(b, 1, -1), self.inp(z)], 1)
        valid = torch.cat([torch.ones(b, 1, dtype=torch.bool, device=vid.device), active], 1)
        for blk in self.blocks:
            x = blk(x, valid)
        return self.head(self.ln_final(x)[:, 0])


def main():
    a = sys.argv[1:]
    frames, size, stride, c, k, dg, players, d, layers, heads, batch, classes, warm, steps = map(int, a[:14])
    device = a[14] if len(a) > 14 else "cpu"
    precision = a[15] if len(a) > 15 else "f32"

    def build():
        model = TrajViT(frames, size, stride, c, k, dg, players, d, layers, heads, classes)
        return model, torch.rand(batch, frames, size, size, 3), torch.randint(0, classes, (batch,))

    print(json.dumps(measure(build, device, precision, warm, steps)))


if __name__ == "__main__":
    main()
