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
  python3 bench/hf_torch.py qwen2_5_vl DEPTH VHIDDEN VINTER VHEADS WINDOW VOCAB HIDDEN INTER LAYERS HEADS KV_HEADS HEAD_DIM IMAGE BATCH SEQ WARM STEPS [DEVICE [PRECISION]]

The Qwen2.5-VL (Qwen2_5_VLForConditionalGeneration: vision tower with window attention, patch
merger, M-RoPE decoder) takes its vision tower, get_rope_index and M-RoPE tables from
hf/testdata/gen_qwenvl.py, the functional twin written from transformers'
src/transformers/models/qwen2_5_vl/modeling_qwen2_5_vl.py against which reel's logits are
verified; its decoder is that file's, batched.
"""
import os
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


class QwenVL(nn.Module):
    """Qwen2_5_VLForConditionalGeneration with tied embeddings over a fixed batch of prompts (one
    image each: vision_start, the image pads, vision_end, text); forward(pixel_values) returns the
    logits flattened to [B·T, V]. Parameters carry transformers' names ('.' written '__')."""

    def __init__(self, cfg, ids, eps=1e-6):
        super().__init__()
        import gen_qwenvl as q
        self.q, self.cfg, self.eps = q, cfg, eps
        vc, tc = cfg["vision_config"], cfg["text_config"]
        d, inter, D, I = vc["hidden_size"], vc["intermediate_size"], tc["hidden_size"], tc["intermediate_size"]
        C, T, P, m = vc["in_channels"], vc["temporal_patch_size"], vc["patch_size"], vc["spatial_merge_size"]
        H, KV, hd = tc["num_attention_heads"], tc["num_key_value_heads"], tc["head_dim"]
        shapes = {"model.visual.patch_embed.proj.weight": (d, C, T, P, P)}
        for i in range(vc["depth"]):
            b = "model.visual.blocks.%d." % i
            shapes.update({b + "norm1.weight": (d,), b + "norm2.weight": (d,), b + "attn.qkv.weight": (3 * d, d),
                           b + "attn.qkv.bias": (3 * d,), b + "attn.proj.weight": (d, d), b + "attn.proj.bias": (d,),
                           b + "mlp.gate_proj.weight": (inter, d), b + "mlp.gate_proj.bias": (inter,),
                           b + "mlp.up_proj.weight": (inter, d), b + "mlp.up_proj.bias": (inter,),
                           b + "mlp.down_proj.weight": (d, inter), b + "mlp.down_proj.bias": (d,)})
        u = d * m * m
        shapes.update({"model.visual.merger.ln_q.weight": (d,), "model.visual.merger.mlp.0.weight": (u, u),
                       "model.visual.merger.mlp.0.bias": (u,), "model.visual.merger.mlp.2.weight": (D, u),
                       "model.visual.merger.mlp.2.bias": (D,), "model.language_model.embed_tokens.weight": (tc["vocab_size"], D),
                       "model.language_model.norm.weight": (D,)})
        for i in range(tc["num_hidden_layers"]):
            b = "model.language_model.layers.%d." % i
            shapes.update({b + "input_layernorm.weight": (D,), b + "post_attention_layernorm.weight": (D,),
                           b + "self_attn.q_proj.weight": (H * hd, D), b + "self_attn.q_proj.bias": (H * hd,),
                           b + "self_attn.k_proj.weight": (KV * hd, D), b + "self_attn.k_proj.bias": (KV * hd,),
                           b + "self_attn.v_proj.weight": (KV * hd, D), b + "self_attn.v_proj.bias": (KV * hd,),
                           b + "self_attn.o_proj.weight": (D, H * hd), b + "mlp.gate_proj.weight": (I, D),
                           b + "mlp.up_proj.weight": (I, D), b + "mlp.down_proj.weight": (D, I)})
        self.p = nn.ParameterDict()
        for k, shp in shapes.items():
            if k.endswith("norm.weight") or k.endswith("norm1.weight") or k.endswith("norm2.weight") or k.endswith("ln_q.weight") or "layernorm" in k:
                v = torch.ones(shp)
            elif k.endswith(".bias"):
                v = torch.zeros(shp)
            else:
                v = torch.randn(shp) * 0.02
            self.p[k.replace(".", "__")] = nn.Parameter(v)
        self.register_buffer("ids", ids, persistent=False)
        g = cfg["image"] // P
        self.grid = [(1, g, g)] * ids.shape[0]
        cos, sin = [], []
        for row in ids.tolist():  # get_rope_index, then the M-RoPE tables, per example (constant)
            pos, _ = q.get_rope_index("qwen2_5_vl", cfg, row, [(1, g, g)], None, None)
            c, s = q.mrope_cos_sin(tc, pos)
            cos.append(c)
            sin.append(s)
        self.register_buffer("cos", torch.stack(cos)[:, None], persistent=False)  # [B, 1, T, hd]
        self.register_buffer("sin", torch.stack(sin)[:, None], persistent=False)

    def forward(self, pixels):
        q, cfg, eps = self.q, self.cfg, self.eps
        tc = cfg["text_config"]
        sd = {k.replace("__", "."): v for k, v in self.p.items()}
        feats = q.vision_tower("qwen2_5_vl", cfg["vision_config"], sd, pixels, self.grid)
        emb = sd["model.language_model.embed_tokens.weight"]
        x = emb[self.ids]
        x = x.masked_scatter((self.ids == cfg["image_token_id"])[..., None], feats)
        B, T, _ = x.shape
        H, KV, hd = tc["num_attention_heads"], tc["num_key_value_heads"], tc["head_dim"]
        mask = torch.full((T, T), float("-inf"), device=x.device).triu(1)
        for i in range(tc["num_hidden_layers"]):  # gen_qwenvl.decoder with a batch axis
            b = "model.language_model.layers.%d." % i
            h = q.rms_norm(sd, b + "input_layernorm", x, eps)
            qq = q.linear(sd, b + "self_attn.q_proj", h).view(B, T, H, hd).transpose(1, 2)
            k = q.linear(sd, b + "self_attn.k_proj", h).view(B, T, KV, hd).transpose(1, 2)
            v = q.linear(sd, b + "self_attn.v_proj", h).view(B, T, KV, hd).transpose(1, 2)
            qq = qq * self.cos + q.rotate_half(qq) * self.sin
            k = k * self.cos + q.rotate_half(k) * self.sin
            k, v = k.repeat_interleave(H // KV, dim=1), v.repeat_interleave(H // KV, dim=1)
            w = torch.softmax(qq @ k.transpose(2, 3) * hd ** -0.5 + mask, dim=-1)
            x = x + q.linear(sd, b + "self_attn.o_proj", (w @ v).transpose(1, 2).reshape(B, T, H * hd), bias=False)
            h = q.rms_norm(sd, b + "post_attention_layernorm", x, eps)
            g = F.silu(q.linear(sd, b + "mlp.gate_proj", h, False)) * q.linear(sd, b + "mlp.up_proj", h, False)
            x = x + q.linear(sd, b + "mlp.down_proj", g, False)
        x = q.rms_norm(sd, "model.language_model.norm", x, eps)
        return (x @ emb.t()).reshape(B * T, -1)


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
    elif kind == "qwen2_5_vl":
        (depth, vd, vinter, vheads, window, vocab, d, inter, layers, heads, kv, hd, image, batch, seq, warm,
         steps) = map(int, sys.argv[2:19])
        rest = sys.argv[19:]
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "hf", "testdata"))
        m = 2
        cfg = {"image": image, "image_token_id": vocab - 2, "video_token_id": vocab - 1, "vision_start_token_id": vocab - 4,
               "vision_end_token_id": vocab - 3,
               "vision_config": {"depth": depth, "hidden_size": vd, "intermediate_size": vinter, "num_heads": vheads,
                                 "in_channels": 3, "patch_size": 14, "temporal_patch_size": 2, "spatial_merge_size": m,
                                 "window_size": window, "fullatt_block_indexes": [depth - 1], "hidden_act": "silu",
                                 "tokens_per_second": 2},
               "text_config": {"vocab_size": vocab, "hidden_size": d, "intermediate_size": inter, "num_hidden_layers": layers,
                               "num_attention_heads": heads, "num_key_value_heads": kv, "head_dim": hd, "rope_theta": 1e6,
                               "rope_scaling": {"mrope_section": [16, 24, 24]}, "rms_norm_eps": 1e-6}}

        def build():
            g = image // 14
            n = (g // m) ** 2
            ids = torch.cat([torch.full((batch, 1), vocab - 4), torch.full((batch, n), vocab - 2), torch.full((batch, 1), vocab - 3),
                             torch.randint(0, vocab - 4, (batch, seq))], 1)
            return (QwenVL(cfg, ids), torch.rand(batch * g * g, 3 * 2 * 14 * 14) * 2 - 1,
                    torch.randint(0, vocab, (batch * ids.shape[1],)))
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
