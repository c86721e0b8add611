#!/usr/bin/env python3
"""PyTorch reference for `reel bench hf`: a training step (cross-entropy, AdamW) of the same
random-weight models as reel's hf.LMBench and hf.VisionBench, written as a PyTorch user would with
PyTorch's own modules where they exist (torch 1.13 has no RMSNorm, rotary embedding or fused
attention for grouped-query heads, so the Llama block is the usual eager code of
huggingface/transformers src/transformers/models/llama/modeling_llama.py; the SigLIP tower is
nn.Conv2d + nn.TransformerEncoderLayer + nn.MultiheadAttention pooling). Prints one JSON line as
bench/vit_torch.py does.

Usage:
  python3 bench/hf_torch.py llama VOCAB HIDDEN INTER LAYERS HEADS KV_HEADS HEAD_DIM THETA BATCH SEQ WARM STEPS [DEVICE [PRECISION]]
  python3 bench/hf_torch.py siglip IMAGE PATCH HIDDEN INTER LAYERS HEADS CLASSES BATCH WARM STEPS [DEVICE [PRECISION]]
"""
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from vit_torch import measure


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight, self.eps = nn.Parameter(torch.ones(d)), eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class LlamaBlock(nn.Module):
    def __init__(self, d, inter, heads, kv, hd, eps):
        super().__init__()
        self.heads, self.kv, self.hd = heads, kv, hd
        self.input_layernorm, self.post_attention_layernorm = RMSNorm(d, eps), RMSNorm(d, eps)
        self.q_proj = nn.Linear(d, heads * hd, bias=False)
        self.k_proj = nn.Linear(d, kv * hd, bias=False)
        self.v_proj = nn.Linear(d, kv * hd, bias=False)
        self.o_proj = nn.Linear(heads * hd, d, bias=False)
        self.gate_proj = nn.Linear(d, inter, bias=False)
        self.up_proj = nn.Linear(d, inter, bias=False)
        self.down_proj = nn.Linear(inter, d, bias=False)

    def forward(self, x, cos, sin, mask):
        b, t, _ = x.shape
        h = self.input_layernorm(x)
        q = self.q_proj(h).view(b, t, self.heads, self.hd).transpose(1, 2)
        k = self.k_proj(h).view(b, t, self.kv, self.hd).transpose(1, 2)
        v = self.v_proj(h).view(b, t, self.kv, self.hd).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(self.heads // self.kv, dim=1)
        v = v.repeat_interleave(self.heads // self.kv, dim=1)
        w = torch.softmax((q @ k.transpose(2, 3)) * self.hd ** -0.5 + mask, dim=-1)
        x = x + self.o_proj((w @ v).transpose(1, 2).reshape(b, t, -1))
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class Llama(nn.Module):
    """LlamaForCausalLM with tied embeddings; returns logits flattened to [B·T, V]."""

    def __init__(self, vocab, d, inter, layers, heads, kv, hd, theta, eps=1e-5):
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab, d)
        nn.init.normal_(self.embed_tokens.weight, std=0.02)
        self.layers = nn.ModuleList([LlamaBlock(d, inter, heads, kv, hd, eps) for _ in range(layers)])
        self.norm = RMSNorm(d, eps)
        self.register_buffer("inv_freq", 1.0 / (theta ** (torch.arange(0, hd, 2).float() / hd)), persistent=False)

    def forward(self, ids):
        b, t = ids.shape
        freqs = torch.arange(t, device=ids.device).float()[:, None] * self.inv_freq[None]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos()[None, None], emb.sin()[None, None]
        mask = torch.full((t, t), float("-inf"), device=ids.device).triu(1)
        x = self.embed_tokens(ids)
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        return (self.norm(x) @ self.embed_tokens.weight.t()).reshape(b * t, -1)


class SiglipTower(nn.Module):
    """SiglipVisionModel (patch conv, learned positions, pre-norm encoder, post-layernorm, attention
    pooling head) with a linear classifier."""

    def __init__(self, image, patch, d, inter, layers, heads, classes, eps=1e-6):
        super().__init__()
        self.patch_embedding = nn.Conv2d(3, d, patch, stride=patch)
        self.position_embedding = nn.Parameter(torch.randn((image // patch) ** 2, d) * 0.02)
        gelu = lambda x: F.gelu(x, approximate="tanh")
        self.layers = nn.ModuleList([nn.TransformerEncoderLayer(d, heads, inter, dropout=0.0, activation=gelu,
                                                                layer_norm_eps=eps, batch_first=True, norm_first=True)
                                     for _ in range(layers)])
        self.post_layernorm = nn.LayerNorm(d, eps=eps)
        self.probe = nn.Parameter(torch.randn(1, 1, d))
        self.attention = nn.MultiheadAttention(d, heads, batch_first=True)
        self.layernorm = nn.LayerNorm(d, eps=eps)
        self.fc1, self.fc2 = nn.Linear(d, inter), nn.Linear(inter, d)
        self.classifier = nn.Linear(d, classes)

    def forward(self, px):
        x = self.patch_embedding(px).flatten(2).transpose(1, 2) + self.position_embedding
        for layer in self.layers:
            x = layer(x)
        x = self.post_layernorm(x)
        h = self.attention(self.probe.expand(x.shape[0], -1, -1), x, x, need_weights=False)[0]
        h = h + self.fc2(F.gelu(self.fc1(self.layernorm(h)), approximate="tanh"))
        return self.classifier(h[:, 0])


def main():
    kind = sys.argv[1]
    if kind == "llama":
        vocab, d, inter, layers, heads, kv, hd = map(int, sys.argv[2:9])
        theta = float(sys.argv[9])
        batch, seq, warm, steps = map(int, sys.argv[10:14])
        rest = sys.argv[14:]

        def build():
            ids = torch.randint(0, vocab, (batch, seq + 1))
            return Llama(vocab, d, inter, layers, heads, kv, hd, theta), ids[:, :-1], ids[:, 1:].reshape(-1)
    else:
        image, patch, d, inter, layers, heads, classes, batch, warm, steps = map(int, sys.argv[2:12])
        rest = sys.argv[12:]

        def build():
            return (SiglipTower(image, patch, d, inter, layers, heads, classes),
                    torch.rand(batch, 3, image, image) * 2 - 1, torch.randint(0, classes, (batch,)))
    device = rest[0] if rest else "cpu"
    precision = rest[1] if len(rest) > 1 else "f32"
    import json
    print(json.dumps(measure(build, device, precision, warm, steps)))


if __name__ == "__main__":
    main()
