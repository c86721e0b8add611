#!/usr/bin/env python3
"""Generates the tiny Hugging Face checkpoints under hf/testdata/ and the outputs reel must match.

No public repository we found commits tiny transformers checkpoints together with the logits
transformers computed on them, and transformers itself is not installable here; so this script is
an independent PyTorch implementation of each architecture, written from transformers' modeling
files (huggingface/transformers, src/transformers/models/<arch>/modeling_<arch>.py: llama, qwen2,
qwen3, gemma, gemma2, gemma3, siglip, clip, paligemma, llava), run once with Debian's python3-torch 1.13
(CPU, float32, eager attention) on random tiny weights. Each fixture directory holds what a user
downloads from the Hub (config.json, model.safetensors or shards + model.safetensors.index.json,
generation_config.json where it matters) plus expected.json: the inputs and the outputs under
transformers' names (logits; image_embeds, text_embeds, logits_per_image) and, for generative
models, the greedy continuation (full recomputation at every step, no cache).

Usage: python3 hf/testdata/gen_fixtures.py [OUT_DIR [qwen3]]   (default: the directory of this script;
with qwen3, only that fixture)
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch

torch.manual_seed(0)
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
NEG = torch.finfo(torch.float32).min

# ----------------------------------------------------------------------------- safetensors I/O
DT = {"F32": (torch.float32, 4), "F16": (torch.float16, 2), "BF16": (torch.bfloat16, 2)}


def tensor_bytes(t, dtype):
    t = t.to(DT[dtype][0]).contiguous()
    if dtype == "BF16":
        return t.view(torch.int16).numpy().astype("<i2").tobytes()
    if dtype == "F16":
        return t.numpy().astype("<f2").tobytes()
    return t.numpy().astype("<f4").tobytes()


def write_safetensors(path, tensors, dtype, metadata=None):
    """The format of huggingface/safetensors (8-byte header length, JSON header, data)."""
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name in sorted(tensors):
        b = tensor_bytes(tensors[name], dtype)
        header[name] = {"dtype": dtype, "shape": list(tensors[name].shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def rounded(sd, dtype):
    """The weights as the checkpoint stores them (rounded to its dtype), back in float32."""
    return {k: v.to(DT[dtype][0]).to(torch.float32) for k, v in sd.items()}


def save(name, config, sd, dtype="F32", shards=1, rename=None, extra=None, gen_config=None):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        if f.endswith(".safetensors") or f.endswith(".index.json"):
            os.remove(os.path.join(d, f))
    out = {(rename(k) if rename else k): v for k, v in sd.items()}
    if shards == 1:
        write_safetensors(os.path.join(d, "model.safetensors"), out, dtype, {"format": "pt"})
    else:
        names = sorted(out)
        weight_map, total = {}, 0
        for i in range(shards):
            part = names[i::shards]
            fn = "model-%05d-of-%05d.safetensors" % (i + 1, shards)
            write_safetensors(os.path.join(d, fn), {n: out[n] for n in part}, dtype, {"format": "pt"})
            for n in part:
                weight_map[n] = fn
                total += out[n].numel() * DT[dtype][1]
        with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    if gen_config is not None:
        with open(os.path.join(d, "generation_config.json"), "w") as f:
            json.dump(gen_config, f, indent=2)
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump(extra, f)
    return d


def lst(t):
    return t.detach().to(torch.float32).numpy().tolist()


# ----------------------------------------------------------------------------- random weights
def rnd(*shape, std=None):
    fan_in = shape[-1] if len(shape) > 1 else 1
    return torch.randn(*shape) * (std if std is not None else 1 / math.sqrt(fan_in))


def linear(sd, name, out, inp, bias):
    sd[name + ".weight"] = rnd(out, inp)
    if bias:
        sd[name + ".bias"] = rnd(out, std=0.1)


def norm_w(sd, name, dim, offset=False, bias=False):
    sd[name + ".weight"] = rnd(dim, std=0.1) + (0.0 if offset else 1.0)
    if bias:
        sd[name + ".bias"] = rnd(dim, std=0.1)


# ----------------------------------------------------------------------------- shared layers
def lin(x, sd, name):
    y = x @ sd[name + ".weight"].t()
    b = sd.get(name + ".bias")
    return y + b if b is not None else y


def act(name, x):
    if name in ("gelu", "gelu_python"):
        return torch.nn.functional.gelu(x)
    if name in ("gelu_pytorch_tanh", "gelu_new", "gelu_fast"):
        return torch.nn.functional.gelu(x, approximate="tanh")
    if name == "quick_gelu":
        return x * torch.sigmoid(1.702 * x)
    if name in ("silu", "swish"):
        return torch.nn.functional.silu(x)
    raise ValueError(name)


def rms_norm(x, w, eps, offset):
    """LlamaRMSNorm (w·x̂) and GemmaRMSNorm ((1+w)·x̂), in float32."""
    xf = x.float()
    out = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return out * (1.0 + w.float()) if offset else w * out


def layer_norm(x, sd, name, eps):
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), sd[name + ".weight"], sd[name + ".bias"], eps)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def inv_freq(theta, dim, rope=None):
    """ROPE_INIT_FUNCTIONS of src/transformers/modeling_rope_utils.py: default, linear, llama3."""
    inv = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    if not rope or rope.get("rope_type", rope.get("type", "default")) == "default":
        return inv
    kind = rope.get("rope_type", rope.get("type"))
    if kind == "linear":
        return inv / rope["factor"]
    assert kind == "llama3"
    factor, low, high, old = rope["factor"], rope["low_freq_factor"], rope["high_freq_factor"], rope["original_max_position_embeddings"]
    low_wave, high_wave = old / low, old / high
    wave = 2 * math.pi / inv
    inv_l = torch.where(wave > low_wave, inv / factor, inv)
    smooth = (old / wave - low) / (high - low)
    smoothed = (1 - smooth) * inv_l / factor + smooth * inv_l
    medium = ~(wave < high_wave) * ~(wave > low_wave)
    return torch.where(medium, smoothed, inv_l)


def rope_cos_sin(inv, positions):
    freqs = positions[:, :, None].float() * inv[None, None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def eager_attention(q, k, v, mask, scale, softcap=None):
    """eager_attention_forward: q [B, H, Tq, hd], k, v [B, H, Tk, hd], mask [B, Tq, Tk] bool."""
    w = (q @ k.transpose(2, 3)) * scale
    if softcap:
        w = torch.tanh(w / softcap) * softcap
    if mask is not None:
        w = w + torch.where(mask[:, None], 0.0, NEG)
    w = torch.softmax(w, dim=-1, dtype=torch.float32)
    return w @ v


def visible(tq, prefix=None, window=0):
    """Causal (k ≤ q), or k in the bidirectional prefix, and q − k < window on sliding layers."""
    q = torch.arange(tq)[:, None]
    k = torch.arange(tq)[None, :]
    m = (k <= q)[None]
    if prefix is not None:
        m = m | prefix[:, None, :]
    if window:
        m = m & ((q - k) < window)[None]
    return m


# ----------------------------------------------------------------------------- decoder LMs
def decoder_weights(c, prefix, sd, tied):
    h, inter, hd = c["hidden_size"], c["intermediate_size"], c["head_dim"]
    heads, kvh = c["num_attention_heads"], c["num_key_value_heads"]
    arch = c["model_type"]
    offset = arch.startswith("gemma")
    sandwich = arch in ("gemma2", "gemma3", "gemma3_text")
    sd[prefix + "embed_tokens.weight"] = rnd(c["vocab_size"], h, std=0.04 if c["model_type"] in ("gemma", "gemma2") else 0.2)
    qkv_bias = c.get("attention_bias", False) or arch == "qwen2"
    for i in range(c["num_hidden_layers"]):
        p = "%slayers.%d." % (prefix, i)
        linear(sd, p + "self_attn.q_proj", heads * hd, h, qkv_bias)
        linear(sd, p + "self_attn.k_proj", kvh * hd, h, qkv_bias)
        linear(sd, p + "self_attn.v_proj", kvh * hd, h, qkv_bias)
        linear(sd, p + "self_attn.o_proj", h, heads * hd, c.get("attention_bias", False))
        if arch in ("gemma3", "gemma3_text", "qwen3"):
            norm_w(sd, p + "self_attn.q_norm", hd, offset)
            norm_w(sd, p + "self_attn.k_norm", hd, offset)
        linear(sd, p + "mlp.gate_proj", inter, h, c.get("mlp_bias", False))
        linear(sd, p + "mlp.up_proj", inter, h, c.get("mlp_bias", False))
        linear(sd, p + "mlp.down_proj", h, inter, c.get("mlp_bias", False))
        norm_w(sd, p + "input_layernorm", h, offset)
        norm_w(sd, p + "post_attention_layernorm", h, offset)
        if sandwich:
            norm_w(sd, p + "pre_feedforward_layernorm", h, offset)
            norm_w(sd, p + "post_feedforward_layernorm", h, offset)
    norm_w(sd, prefix + "norm", h, offset)
    if not tied:
        sd["lm_head.weight"] = rnd(c["vocab_size"], h)


def layer_sliding(c, i):
    arch = c["model_type"]
    if "layer_types" in c:
        return c["layer_types"][i] == "sliding_attention"
    if arch == "gemma2":
        return not bool(i % 2)
    if arch in ("gemma3", "gemma3_text"):
        return bool((i + 1) % c.get("sliding_window_pattern", 6))
    if arch in ("qwen2", "qwen3"):  # Qwen2Config / Qwen3Config.__post_init__
        return bool(c.get("use_sliding_window")) and c.get("sliding_window") is not None and i >= c["max_window_layers"]
    return False


def decoder_forward(c, prefix, sd, x, positions, bidir=None):
    """LlamaModel / Qwen2Model / Qwen3Model / GemmaModel / Gemma2Model / Gemma3TextModel over
    inputs_embeds x. Qwen3Attention (modeling_qwen3.py) is Qwen2's without the q/k/v biases (all
    projections take attention_bias), with q_norm / k_norm (Qwen3RMSNorm over head_dim) on the
    queries and keys before RoPE."""
    arch = c["model_type"]
    offset = arch.startswith("gemma")
    sandwich = arch in ("gemma2", "gemma3", "gemma3_text")
    eps = c["rms_norm_eps"]
    h, hd = c["hidden_size"], c["head_dim"]
    heads, kvh = c["num_attention_heads"], c["num_key_value_heads"]
    b, t, _ = x.shape
    if arch in ("gemma", "gemma2"):
        x = x * torch.tensor(h ** 0.5, dtype=x.dtype)
    # rotary: global and (Gemma 3) local
    if "rope_parameters" in c and "full_attention" in c["rope_parameters"]:
        g = c["rope_parameters"]["full_attention"]
        l = c["rope_parameters"]["sliding_attention"]
        inv_g, inv_l = inv_freq(g["rope_theta"], hd, g), inv_freq(l["rope_theta"], hd, l)
    elif "rope_parameters" in c:
        rp = c["rope_parameters"]
        inv_g = inv_l = inv_freq(rp["rope_theta"], hd, rp)
    else:
        inv_g = inv_freq(c["rope_theta"], hd, c.get("rope_scaling"))
        inv_l = inv_freq(c["rope_local_base_freq"], hd) if "rope_local_base_freq" in c else inv_g
    cos_g, sin_g = rope_cos_sin(inv_g, positions)
    cos_l, sin_l = rope_cos_sin(inv_l, positions)
    scale = c["query_pre_attn_scalar"] ** -0.5 if c.get("query_pre_attn_scalar") else hd ** -0.5
    softcap = c.get("attn_logit_softcapping")
    for i in range(c["num_hidden_layers"]):
        p = "%slayers.%d." % (prefix, i)
        sliding = layer_sliding(c, i) and c.get("sliding_window")
        mask = visible(t, bidir, c["sliding_window"] if sliding else 0)
        cos, sin = (cos_l, sin_l) if sliding else (cos_g, sin_g)
        res = x
        y = rms_norm(x, sd[p + "input_layernorm.weight"], eps, offset)
        q = lin(y, sd, p + "self_attn.q_proj").view(b, t, heads, hd).transpose(1, 2)
        k = lin(y, sd, p + "self_attn.k_proj").view(b, t, kvh, hd).transpose(1, 2)
        v = lin(y, sd, p + "self_attn.v_proj").view(b, t, kvh, hd).transpose(1, 2)
        if p + "self_attn.q_norm.weight" in sd:
            q = rms_norm(q, sd[p + "self_attn.q_norm.weight"], eps, offset)
            k = rms_norm(k, sd[p + "self_attn.k_norm.weight"], eps, offset)
        q = q * cos[:, None] + rotate_half(q) * sin[:, None]
        k = k * cos[:, None] + rotate_half(k) * sin[:, None]
        k = k.repeat_interleave(heads // kvh, dim=1)
        v = v.repeat_interleave(heads // kvh, dim=1)
        o = eager_attention(q, k, v, mask, scale, softcap).transpose(1, 2).reshape(b, t, heads * hd)
        y = lin(o, sd, p + "self_attn.o_proj")
        if sandwich:
            y = rms_norm(y, sd[p + "post_attention_layernorm.weight"], eps, offset)
        x = res + y
        res = x
        nn = "pre_feedforward_layernorm" if sandwich else "post_attention_layernorm"
        y = rms_norm(x, sd[p + nn + ".weight"], eps, offset)
        a = c.get("hidden_activation") or c.get("hidden_act")
        y = lin(act(a, lin(y, sd, p + "mlp.gate_proj")) * lin(y, sd, p + "mlp.up_proj"), sd, p + "mlp.down_proj")
        if sandwich:
            y = rms_norm(y, sd[p + "post_feedforward_layernorm.weight"], eps, offset)
        x = res + y
    return rms_norm(x, sd[prefix + "norm.weight"], eps, offset)


def decoder_embed(c, prefix, sd, ids):
    x = sd[prefix + "embed_tokens.weight"][ids.clamp(0, c["vocab_size"] - 1)]
    if c["model_type"] in ("gemma3", "gemma3_text"):
        x = x * torch.tensor(c["hidden_size"] ** 0.5, dtype=x.dtype)
    return x


def lm_head(c, prefix, sd, h):
    w = sd[prefix + "embed_tokens.weight"] if c.get("tie_word_embeddings") else sd["lm_head.weight"]
    logits = h @ w.t()
    cap = c.get("final_logit_softcapping")
    return torch.tanh(logits / cap) * cap if cap else logits


def causal_lm(c, sd, ids):
    pos = torch.arange(ids.shape[1])[None].expand(ids.shape[0], -1)
    return lm_head(c, "model.", sd, decoder_forward(c, "model.", sd, decoder_embed(c, "model.", sd, ids), pos))


def greedy(step, ids, n, eos):
    """Greedy decoding by full recomputation (step(ids) → logits [1, T, V]), stopping after an
    end-of-sequence id as transformers' generate does."""
    out = []
    for _ in range(n):
        nxt = int(step(ids)[0, -1].argmax())
        out.append(nxt)
        if nxt in eos:
            break
        ids = torch.cat([ids, torch.tensor([[nxt]])], dim=1)
    return out


def make_lm(name, config, dtype="F32", shards=1, new_tokens=6):
    c = dict(config)
    sd = {}
    decoder_weights(c, "model.", sd, c.get("tie_word_embeddings", False))
    sd_r = rounded(sd, dtype)
    ids = torch.tensor([[1, 5, 9, 17, 33, 2, 64, 100, 7, 3, 11, 250][: c.get("_seq", 12)]])
    with torch.no_grad():
        logits = causal_lm(c, sd_r, ids)
        gen = greedy(lambda x: causal_lm(c, sd_r, x), ids, new_tokens, [c["eos_token_id"]])
    c.pop("_seq", None)
    save(name, c, sd, dtype, shards, extra={"tokens": ids[0].tolist(), "logits": lst(logits), "generated": gen},
         gen_config={"bos_token_id": c.get("bos_token_id"), "eos_token_id": c.get("eos_token_id")})


# ----------------------------------------------------------------------------- SigLIP / CLIP
def encoder_weights(sd, p, c):
    h, inter = c["hidden_size"], c["intermediate_size"]
    for i in range(c["num_hidden_layers"]):
        q = "%sencoder.layers.%d." % (p, i)
        for n in ("q_proj", "k_proj", "v_proj", "out_proj"):
            linear(sd, q + "self_attn." + n, h, h, True)
        norm_w(sd, q + "layer_norm1", h, bias=True)
        norm_w(sd, q + "layer_norm2", h, bias=True)
        linear(sd, q + "mlp.fc1", inter, h, True)
        linear(sd, q + "mlp.fc2", h, inter, True)


def encoder_forward(sd, p, c, x, mask=None):
    """CLIPEncoder (SiglipEncoder copies it): the input then each layer's output."""
    b, t, h = x.shape
    heads = c["num_attention_heads"]
    hd = h // heads
    states = [x]
    for i in range(c["num_hidden_layers"]):
        q = "%sencoder.layers.%d." % (p, i)
        y = layer_norm(x, sd, q + "layer_norm1", c["layer_norm_eps"])
        qs = lin(y, sd, q + "self_attn.q_proj").view(b, t, heads, hd).transpose(1, 2)
        ks = lin(y, sd, q + "self_attn.k_proj").view(b, t, heads, hd).transpose(1, 2)
        vs = lin(y, sd, q + "self_attn.v_proj").view(b, t, heads, hd).transpose(1, 2)
        o = eager_attention(qs, ks, vs, mask, hd ** -0.5).transpose(1, 2).reshape(b, t, h)
        x = x + lin(o, sd, q + "self_attn.out_proj")
        y = layer_norm(x, sd, q + "layer_norm2", c["layer_norm_eps"])
        x = x + lin(act(c["hidden_act"], lin(y, sd, q + "mlp.fc1")), sd, q + "mlp.fc2")
        states.append(x)
    return states


def vision_weights(sd, p, c, arch, head):
    h, ps, ch = c["hidden_size"], c["patch_size"], c.get("num_channels", 3)
    n = (c["image_size"] // ps) ** 2
    sd[p + "embeddings.patch_embedding.weight"] = rnd(h, ch, ps, ps, std=1 / math.sqrt(ch * ps * ps))
    if arch == "siglip":
        sd[p + "embeddings.patch_embedding.bias"] = rnd(h, std=0.1)
        sd[p + "embeddings.position_embedding.weight"] = rnd(n, h, std=0.5)
    else:
        sd[p + "embeddings.class_embedding"] = rnd(h, std=0.5)
        sd[p + "embeddings.position_embedding.weight"] = rnd(n + 1, h, std=0.5)
        norm_w(sd, p + "pre_layrnorm", h, bias=True)
    encoder_weights(sd, p, c)
    norm_w(sd, p + "post_layernorm", h, bias=True)
    if head:
        sd[p + "head.probe"] = rnd(1, 1, h, std=1.0)
        sd[p + "head.attention.in_proj_weight"] = rnd(3 * h, h)
        sd[p + "head.attention.in_proj_bias"] = rnd(3 * h, std=0.1)
        linear(sd, p + "head.attention.out_proj", h, h, True)
        norm_w(sd, p + "head.layernorm", h, bias=True)
        linear(sd, p + "head.mlp.fc1", c["intermediate_size"], h, True)
        linear(sd, p + "head.mlp.fc2", h, c["intermediate_size"], True)


def vision_forward(sd, p, c, arch, pixels, head):
    """SiglipVisionTransformer / CLIPVisionTransformer: (hidden_states, last_hidden_state, pooled)."""
    w = sd[p + "embeddings.patch_embedding.weight"]
    x = torch.nn.functional.conv2d(pixels, w, sd.get(p + "embeddings.patch_embedding.bias"), stride=c["patch_size"])
    x = x.flatten(2).transpose(1, 2)
    if arch == "clip":
        cls = sd[p + "embeddings.class_embedding"].expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1)
    x = x + sd[p + "embeddings.position_embedding.weight"][None]
    if arch == "clip":
        x = layer_norm(x, sd, p + "pre_layrnorm", c["layer_norm_eps"])
    states = encoder_forward(sd, p, c, x)
    if arch == "clip":
        last = states[-1]
        return states, last, layer_norm(last[:, 0], sd, p + "post_layernorm", c["layer_norm_eps"])
    last = layer_norm(states[-1], sd, p + "post_layernorm", c["layer_norm_eps"])
    pooled = None
    if head:  # SiglipMultiheadAttentionPoolingHead with torch.nn.MultiheadAttention
        hsz = c["hidden_size"]
        mha = torch.nn.MultiheadAttention(hsz, c["num_attention_heads"], batch_first=True)
        mha.in_proj_weight.data = sd[p + "head.attention.in_proj_weight"]
        mha.in_proj_bias.data = sd[p + "head.attention.in_proj_bias"]
        mha.out_proj.weight.data = sd[p + "head.attention.out_proj.weight"]
        mha.out_proj.bias.data = sd[p + "head.attention.out_proj.bias"]
        probe = sd[p + "head.probe"].repeat(last.shape[0], 1, 1)
        y = mha(probe, last, last)[0]
        r = y
        y = layer_norm(y, sd, p + "head.layernorm", c["layer_norm_eps"])
        y = r + lin(act(c["hidden_act"], lin(y, sd, p + "head.mlp.fc1")), sd, p + "head.mlp.fc2")
        pooled = y[:, 0]
    return states, last, pooled


def text_weights(sd, p, c, arch):
    h = c["hidden_size"]
    sd[p + "embeddings.token_embedding.weight"] = rnd(c["vocab_size"], h, std=1.0)
    sd[p + "embeddings.position_embedding.weight"] = rnd(c["max_position_embeddings"], h, std=0.5)
    encoder_weights(sd, p, c)
    norm_w(sd, p + "final_layer_norm", h, bias=True)
    if arch == "siglip":
        linear(sd, p + "head", c.get("projection_size", h), h, True)


def text_forward(sd, p, c, arch, ids):
    t = ids.shape[1]
    x = sd[p + "embeddings.token_embedding.weight"][ids] + sd[p + "embeddings.position_embedding.weight"][:t][None]
    mask = visible(t).expand(ids.shape[0], -1, -1) if arch == "clip" else None
    h = layer_norm(encoder_forward(sd, p, c, x, mask)[-1], sd, p + "final_layer_norm", c["layer_norm_eps"])
    if arch == "siglip":
        return lin(h[:, -1, :], sd, p + "head")
    if c["eos_token_id"] == 2:
        at = ids.to(torch.int).argmax(dim=-1)
    else:
        at = (ids.to(torch.int) == c["eos_token_id"]).int().argmax(dim=-1)
    return h[torch.arange(h.shape[0]), at]


def make_contrastive(name, arch, vc, tc, proj=None):
    sd = {}
    vision_weights(sd, "vision_model.", vc, arch, arch == "siglip")
    text_weights(sd, "text_model.", tc, arch)
    if arch == "siglip":
        sd["logit_scale"] = torch.tensor([math.log(10.0)])
        sd["logit_bias"] = torch.tensor([-2.5])
        config = {"architectures": ["SiglipModel"], "model_type": "siglip", "vision_config": vc, "text_config": tc}
    else:
        sd["visual_projection.weight"] = rnd(proj, vc["hidden_size"])
        sd["text_projection.weight"] = rnd(proj, tc["hidden_size"])
        sd["logit_scale"] = torch.tensor(2.6592)
        config = {"architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": proj,
                  "vision_config": vc, "text_config": tc}
    pixels = torch.rand(2, 3, vc["image_size"], vc["image_size"]) * 2 - 1
    if arch == "clip":  # the legacy eos 2: the end-of-text id is the largest id of each text
        texts = [[1, 5, 9, tc["vocab_size"] - 1, 0, 0], [1, 7, 3, 8, 4, tc["vocab_size"] - 1]]
    else:
        texts = [[1, 5, 9, 17, 2, 0], [1, 7, 3, 8, 4, 2]]
    ids = torch.tensor(texts)
    with torch.no_grad():
        _, _, pooled = vision_forward(sd, "vision_model.", vc, arch, pixels, arch == "siglip")
        txt = text_forward(sd, "text_model.", tc, arch, ids)
        if arch == "clip":
            pooled = pooled @ sd["visual_projection.weight"].t()
            txt = txt @ sd["text_projection.weight"].t()
        img = pooled / pooled.norm(p=2, dim=-1, keepdim=True)
        txt = txt / txt.norm(p=2, dim=-1, keepdim=True)
        per_text = txt @ img.t() * sd["logit_scale"].exp()
        if arch == "siglip":
            per_text = per_text + sd["logit_bias"]
    d = save(name, config, sd, extra={"texts": texts, "pixels_shape": list(pixels.shape), "image_embeds": lst(img),
                                      "text_embeds": lst(txt), "logits_per_image": lst(per_text.t())})
    np.save(os.path.join(d, "pixels.npy"), pixels.numpy().astype(np.float32))


# ----------------------------------------------------------------------------- VLMs
def v4_names(k):
    """transformers 4.x key layout of a VLM (5.x names in, 4.x out)."""
    if k.startswith("model.language_model."):
        return "language_model.model." + k[len("model.language_model."):]
    if k.startswith("lm_head."):
        return "language_model." + k
    if k.startswith("model."):
        return k[len("model."):]
    return k


def make_paligemma(name, tc, vc, layout4, new_tokens=5):
    sd = {}
    vision_weights(sd, "model.vision_tower.vision_model.", vc, "siglip", False)
    linear(sd, "model.multi_modal_projector.linear", tc["hidden_size"], vc["hidden_size"], True)
    decoder_weights(tc, "model.language_model.", sd, True)
    img_tok = tc["vocab_size"] - 1
    n_img = (vc["image_size"] // vc["patch_size"]) ** 2
    config = {"architectures": ["PaliGemmaForConditionalGeneration"], "model_type": "paligemma",
              "image_token_index": img_tok, "hidden_size": tc["hidden_size"], "projection_dim": tc["hidden_size"],
              "vision_config": dict(vc, projection_dim=tc["hidden_size"]), "text_config": tc,
              "bos_token_id": 2, "eos_token_id": 1, "pad_token_id": 0}
    pixels = torch.rand(1, 3, vc["image_size"], vc["image_size"]) * 2 - 1
    prompt = [img_tok] * n_img + [2, 40, 41, 42, 10]  # image, <bos>, prompt, "\n"
    suffix = [50, 51, 52]
    ids = torch.tensor([prompt + suffix])
    types = torch.tensor([[0] * len(prompt) + [1] * len(suffix)])

    def forward(ids, types, sd):
        dec = "model.language_model."
        x = decoder_embed(tc, dec, sd, ids)
        _, last, _ = vision_forward(sd, "model.vision_tower.vision_model.", vc, "siglip", pixels, False)
        f = lin(last, sd, "model.multi_modal_projector.linear") / (tc["hidden_size"] ** 0.5)
        x = x.masked_scatter((ids == img_tok)[..., None].expand_as(x), f)
        pos = torch.arange(ids.shape[1])[None] + 1  # PaliGemma positions are 1-indexed
        h = decoder_forward(tc, dec, sd, x, pos, bidir=(types == 0))
        return lm_head(tc, dec, sd, h)

    with torch.no_grad():
        logits = forward(ids, types, sd)
        p = torch.tensor([prompt])
        gen = greedy(lambda x: forward(x, torch.tensor([[0] * len(prompt) + [1] * (x.shape[1] - len(prompt))]), sd), p, new_tokens, [1])
    d = save(name, config, sd, rename=v4_names if layout4 else None,
             extra={"tokens": ids[0].tolist(), "token_types": types[0].tolist(), "logits": lst(logits),
                    "prompt": prompt, "generated": gen},
             gen_config={"bos_token_id": 2, "eos_token_id": 1})
    np.save(os.path.join(d, "pixels.npy"), pixels.numpy().astype(np.float32))


def make_llava(name, tc, vc, varch, layer, strategy, layout4, new_tokens=5):
    sd = {}
    vision_weights(sd, "model.vision_tower.vision_model.", vc, varch, False)
    vh, th = vc["hidden_size"], tc["hidden_size"]
    linear(sd, "model.multi_modal_projector.linear_1", th, vh, True)
    linear(sd, "model.multi_modal_projector.linear_2", th, th, True)
    decoder_weights(tc, "model.language_model.", sd, tc.get("tie_word_embeddings", False))
    img_tok = tc["vocab_size"] - 1
    n = (vc["image_size"] // vc["patch_size"]) ** 2 + (1 if varch == "clip" else 0) - (1 if strategy == "default" else 0)
    vconf = dict(vc, model_type="clip_vision_model" if varch == "clip" else "siglip_vision_model")
    if varch == "siglip":
        vconf["vision_use_head"] = False
    config = {"architectures": ["LlavaForConditionalGeneration"], "model_type": "llava",
              "image_token_index": img_tok, "vision_feature_layer": layer,
              "vision_feature_select_strategy": strategy, "projector_hidden_act": "gelu",
              "vision_config": vconf, "text_config": tc}
    pixels = torch.rand(1, 3, vc["image_size"], vc["image_size"]) * 2 - 1
    prompt = [1, 30, 31] + [img_tok] * n + [32, 33, 34]

    def forward(ids):
        dec = "model.language_model."
        x = decoder_embed(tc, dec, sd, ids)
        states, _, _ = vision_forward(sd, "model.vision_tower.vision_model.", vc, varch, pixels, False)
        sel = states[layer]
        if strategy == "default":
            sel = sel[:, 1:]
        f = lin(act("gelu", lin(sel, sd, "model.multi_modal_projector.linear_1")), sd, "model.multi_modal_projector.linear_2")
        x = x.masked_scatter((ids == img_tok)[..., None].expand_as(x), f)
        pos = torch.arange(ids.shape[1])[None]
        return lm_head(tc, dec, sd, decoder_forward(tc, dec, sd, x, pos))

    ids = torch.tensor([prompt])
    with torch.no_grad():
        logits = forward(ids)
        gen = greedy(forward, ids, new_tokens, [2])
    d = save(name, config, sd, rename=v4_names if layout4 else None,
             extra={"tokens": prompt, "logits": lst(logits), "prompt": prompt, "generated": gen},
             gen_config={"bos_token_id": 1, "eos_token_id": 2})
    np.save(os.path.join(d, "pixels.npy"), pixels.numpy().astype(np.float32))


# ----------------------------------------------------------------------------- the fixtures
def lm_config(arch, **kw):
    c = {"architectures": [{"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM", "gemma": "GemmaForCausalLM",
                            "gemma2": "Gemma2ForCausalLM", "gemma3_text": "Gemma3ForCausalLM"}[arch]],
         "model_type": arch, "vocab_size": 256, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8, "rms_norm_eps": 1e-5,
         "max_position_embeddings": 128, "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float32"}
    c.update(kw)
    return c


def make_images():
    """A 23×17 RGBA PNG and a 30×40 RGB JPEG-free PNG, preprocessed as transformers' slow
    SiglipImageProcessor / CLIPImageProcessor do (image_processing_siglip.py, image_processing_clip.py,
    image_transforms.py): PIL convert("RGB"), PIL resize, center crop, rescale in float64 cast to
    float32, normalize in float32, channels first."""
    from PIL import Image
    d = os.path.join(OUT, "image")
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(0)
    cases = {
        "siglip": ({"do_resize": True, "size": {"height": 16, "width": 16}, "resample": 3, "do_rescale": True,
                    "rescale_factor": 1 / 255, "do_normalize": True, "image_mean": [0.5, 0.5, 0.5],
                    "image_std": [0.5, 0.5, 0.5], "image_processor_type": "SiglipImageProcessor"}, (17, 23, 4)),
        "clip": ({"do_resize": True, "size": {"shortest_edge": 12}, "resample": 2, "do_center_crop": True,
                  "crop_size": {"height": 12, "width": 12}, "do_rescale": True, "rescale_factor": 1 / 255,
                  "do_normalize": True, "image_mean": [0.48145466, 0.4578275, 0.40821073],
                  "image_std": [0.26862954, 0.26130258, 0.27577711], "image_processor_type": "CLIPImageProcessor"},
                 (40, 30, 3)),
    }
    for name, (pp, shape) in cases.items():
        arr = rng.integers(0, 256, size=shape, dtype=np.uint8)
        img = Image.fromarray(arr, "RGBA" if shape[2] == 4 else "RGB")
        img.save(os.path.join(d, name + ".png"))
        im = img.convert("RGB")
        if "shortest_edge" in pp["size"]:
            s = pp["size"]["shortest_edge"]
            w, h = im.size
            short, long = min(w, h), max(w, h)
            nl = int(s * long / short)
            size = (s, nl) if w <= h else (nl, s)
        else:
            size = (pp["size"]["width"], pp["size"]["height"])
        im = im.resize(size, resample=pp["resample"])
        x = np.array(im)
        if pp.get("do_center_crop"):
            ch, cw = pp["crop_size"]["height"], pp["crop_size"]["width"]
            top, left = (x.shape[0] - ch) // 2, (x.shape[1] - cw) // 2
            x = x[top:top + ch, left:left + cw]
        x = (x.astype(np.float64) * pp["rescale_factor"]).astype(np.float32)
        x = (x - np.array(pp["image_mean"], dtype=np.float32)) / np.array(pp["image_std"], dtype=np.float32)
        np.save(os.path.join(d, name + ".npy"), x.transpose(2, 0, 1)[None].astype(np.float32))
        with open(os.path.join(d, name + "_preprocessor_config.json"), "w") as f:
            json.dump(pp, f, indent=2)


def make_qwen3():
    """Qwen3 (modeling_qwen3.py): q/k RMSNorm per head, no biases, head_dim 16 ≠ hidden/heads, untied
    head, sliding window 4 from layer 1 on (use_sliding_window, max_window_layers). Seeded on its
    own, so it can be (re)generated alone: gen_fixtures.py OUT_DIR qwen3."""
    torch.manual_seed(3)
    make_lm("qwen3", lm_config("qwen3", num_hidden_layers=3, head_dim=16, hidden_act="silu", rope_theta=1000000.0,
                               tie_word_embeddings=False, rms_norm_eps=1e-6, use_sliding_window=True,
                               sliding_window=4, max_window_layers=1, attention_bias=False))


def main():
    if sys.argv[2:] == ["qwen3"]:
        make_qwen3()
        return
    make_images()
    # SmolLM2-style Llama: tied embeddings, GQA, Llama 3 RoPE scaling (transformers 4.x rope_scaling).
    make_lm("llama", lm_config("llama", hidden_act="silu", rope_theta=10000.0, tie_word_embeddings=True,
                               rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                             "high_freq_factor": 4.0, "original_max_position_embeddings": 16}))
    # Qwen2: q/k/v biases, untied head; BF16 weights in two shards; transformers 5.x rope_parameters.
    make_lm("qwen2", lm_config("qwen2", hidden_act="silu", tie_word_embeddings=False, torch_dtype="bfloat16",
                               rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
                               use_sliding_window=False, sliding_window=None, max_window_layers=2),
            dtype="BF16", shards=2)
    # Gemma: (1+w) norms, scaled inputs, multi-query attention, head_dim ≠ hidden/heads; F16 weights.
    make_lm("gemma", lm_config("gemma", num_key_value_heads=1, head_dim=16, hidden_act="gelu_pytorch_tanh",
                               hidden_activation="gelu_pytorch_tanh", rope_theta=10000.0, tie_word_embeddings=True,
                               rms_norm_eps=1e-6, torch_dtype="float16"), dtype="F16")
    # Gemma 2: sandwich norms, soft-capping, sliding window 4 on even layers (4.x config), scalar 12.
    make_lm("gemma2", lm_config("gemma2", num_hidden_layers=3, hidden_activation="gelu_pytorch_tanh",
                                rope_theta=10000.0, tie_word_embeddings=True, rms_norm_eps=1e-6,
                                query_pre_attn_scalar=12, attn_logit_softcapping=5.0, final_logit_softcapping=3.0,
                                sliding_window=4))
    # Gemma 3 text: q/k norms, 5.x layer_types and per-type rope_parameters (linear scaling on global).
    make_lm("gemma3", lm_config("gemma3_text", num_hidden_layers=3, num_key_value_heads=1, head_dim=16,
                                hidden_activation="gelu_pytorch_tanh", tie_word_embeddings=True, rms_norm_eps=1e-6,
                                query_pre_attn_scalar=16, sliding_window=3, final_logit_softcapping=None,
                                attn_logit_softcapping=None,
                                layer_types=["sliding_attention", "sliding_attention", "full_attention"],
                                rope_parameters={"full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1000000.0},
                                                 "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}}))
    sig_v = {"model_type": "siglip_vision_model", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
             "num_attention_heads": 4, "image_size": 16, "patch_size": 4, "num_channels": 3,
             "hidden_act": "gelu_pytorch_tanh", "layer_norm_eps": 1e-6}
    sig_t = {"model_type": "siglip_text_model", "hidden_size": 24, "intermediate_size": 64, "num_hidden_layers": 2,
             "num_attention_heads": 4, "vocab_size": 64, "max_position_embeddings": 8, "projection_size": 32,
             "hidden_act": "gelu_pytorch_tanh", "layer_norm_eps": 1e-6}
    make_contrastive("siglip", "siglip", sig_v, sig_t)
    clip_v = {"model_type": "clip_vision_model", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
              "num_attention_heads": 4, "image_size": 16, "patch_size": 4, "num_channels": 3,
              "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5}
    clip_t = {"model_type": "clip_text_model", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
              "num_attention_heads": 4, "vocab_size": 64, "max_position_embeddings": 8, "eos_token_id": 2,
              "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5}
    make_contrastive("clip", "clip", clip_v, clip_t, proj=24)
    # PaliGemma (Gemma decoder), transformers 4.x key layout.
    pg_t = lm_config("gemma", num_key_value_heads=1, head_dim=16, hidden_activation="gelu_pytorch_tanh",
                     rope_theta=10000.0, tie_word_embeddings=True, rms_norm_eps=1e-6)
    pg_t.pop("architectures")
    make_paligemma("paligemma", pg_t, dict(sig_v, num_hidden_layers=2), layout4=True)
    # PaliGemma 2 (Gemma 2 decoder), transformers 5.x key layout.
    pg2_t = lm_config("gemma2", hidden_activation="gelu_pytorch_tanh", rope_theta=10000.0, tie_word_embeddings=True,
                      rms_norm_eps=1e-6, query_pre_attn_scalar=8, attn_logit_softcapping=5.0,
                      final_logit_softcapping=3.0, sliding_window=64)
    pg2_t.pop("architectures")
    make_paligemma("paligemma2", pg2_t, sig_v, layout4=False)
    # LLaVA: SigLIP tower + Qwen2 decoder (5.x layout, layer -2, "full"); CLIP tower + Llama (4.x, "default").
    q_t = lm_config("qwen2", hidden_act="silu", rope_theta=1000000.0, tie_word_embeddings=True)
    q_t.pop("architectures")
    make_llava("llava-siglip-qwen2", q_t, sig_v, "siglip", -2, "full", layout4=False)
    l_t = lm_config("llama", hidden_act="silu", rope_theta=10000.0, tie_word_embeddings=False)
    l_t.pop("architectures")
    make_llava("llava-clip-llama", l_t, clip_v, "clip", -2, "default", layout4=True)
    make_qwen3()


if __name__ == "__main__":
    main()
