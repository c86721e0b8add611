#!/usr/bin/env python3
"""Tiny random Qwen2-VL and Qwen2.5-VL checkpoints and the outputs reel must reproduce.

An independent PyTorch (1.13, CPU, float32, eager attention) implementation of
Qwen2VLForConditionalGeneration and Qwen2_5_VLForConditionalGeneration written from
huggingface/transformers src/transformers/models/qwen2_vl/modeling_qwen2_vl.py and
src/transformers/models/qwen2_5_vl/modeling_qwen2_5_vl.py (vision tower, patch merger, M-RoPE,
get_rope_index), and of the image processor's patchify step
(src/transformers/models/qwen2_vl/image_processing_qwen2_vl.py). It shares no code with reel.

    /usr/bin/python3 hf/testdata/gen_qwenvl.py

writes hf/testdata/qwen2vl-tiny and hf/testdata/qwen2.5vl-tiny: config.json, model.safetensors
(transformers' names), generation_config.json, preprocessor_config.json and the .npy / JSON
outputs described in hf/testdata/README.md.
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

torch.manual_seed(0)
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
NEG = torch.finfo(torch.float32).min


def write_safetensors(path, tensors):
    """huggingface/safetensors' format: 8-byte little-endian header length, JSON header, data."""
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        b = tensors[name].contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def save_npy(path, a):
    np.save(path, np.ascontiguousarray(a, dtype=np.float32))


# ----------------------------------------------------------------------------- layers
def linear(sd, name, x, bias=True):
    y = x @ sd[name + ".weight"].t()
    if bias:
        y = y + sd[name + ".bias"]
    return y


def layer_norm(sd, name, x, eps):
    return F.layer_norm(x, (x.shape[-1],), sd[name + ".weight"], sd[name + ".bias"], eps)


def rms_norm(sd, name, x, eps):
    var = x.pow(2).mean(-1, keepdim=True)
    return sd[name + ".weight"] * (x * torch.rsqrt(var + eps))


def act(name, x):
    if name == "quick_gelu":
        return x * torch.sigmoid(1.702 * x)
    if name == "silu":
        return F.silu(x)
    if name == "gelu":
        return F.gelu(x)
    if name == "gelu_pytorch_tanh":
        return F.gelu(x, approximate="tanh")
    raise ValueError(name)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


# ----------------------------------------------------------------------------- vision tower
def rot_pos_emb(vc, grid_thw):
    """VisionTransformerPretrainedModel.rot_pos_emb: (h, w) of every patch, merge windows grouped."""
    m = vc["spatial_merge_size"]
    pos_ids = []
    for t, h, w in grid_thw:
        hpos = torch.arange(h).unsqueeze(1).expand(-1, w).reshape(h // m, m, w // m, m).permute(0, 2, 1, 3).flatten()
        wpos = torch.arange(w).unsqueeze(0).expand(h, -1).reshape(h // m, m, w // m, m).permute(0, 2, 1, 3).flatten()
        pos_ids.append(torch.stack([hpos, wpos], dim=-1).repeat(t, 1))
    pos_ids = torch.cat(pos_ids, dim=0)
    max_grid = max(max(h, w) for _, h, w in grid_thw)
    dim = head_dim_v(vc) // 2
    inv_freq = 1.0 / (10000.0 ** (torch.arange(0, dim, 2, dtype=torch.float) / dim))
    full = torch.outer(torch.arange(max_grid, dtype=torch.float), inv_freq)
    return full[pos_ids].flatten(1)


def head_dim_v(vc):
    return vc.get("embed_dim", vc["hidden_size"]) // vc["num_heads"]


def get_window_index(vc, grid_thw):
    """Qwen2_5_VisionTransformerPretrainedModel.get_window_index."""
    m = vc["spatial_merge_size"]
    unit = m * m
    window_index, cu = [], [0]
    wid = 0
    vmws = vc["window_size"] // m // vc["patch_size"]
    for gt, gh, gw in grid_thw:
        lh, lw = gh // m, gw // m
        index = torch.arange(gt * lh * lw).reshape(gt, lh, lw)
        pad_h, pad_w = vmws - lh % vmws, vmws - lw % vmws
        nh, nw = (lh + pad_h) // vmws, (lw + pad_w) // vmws
        ip = F.pad(index, (0, pad_w, 0, pad_h), "constant", -100)
        ip = ip.reshape(gt, nh, vmws, nw, vmws).permute(0, 1, 3, 2, 4).reshape(gt, nh * nw, vmws, vmws)
        seqlens = (ip != -100).sum([2, 3]).reshape(-1)
        ip = ip.reshape(-1)
        window_index.append(ip[ip != -100] + wid)
        cu.extend((seqlens.cumsum(0) * unit + cu[-1]).tolist())
        wid += gt * lh * lw
    return torch.cat(window_index), cu


def vision_attention(sd, p, x, cu_seqlens, cos, sin, heads):
    n, d = x.shape
    q, k, v = linear(sd, p + ".qkv", x).reshape(n, 3, heads, -1).permute(1, 0, 2, 3).unbind(0)
    c, s = cos.unsqueeze(-2), sin.unsqueeze(-2)
    q = q * c + rotate_half(q) * s
    k = k * c + rotate_half(k) * s
    hd = d // heads
    outs = []
    for a, b in zip(cu_seqlens[:-1], cu_seqlens[1:]):
        qq, kk, vv = (t[a:b].transpose(0, 1) for t in (q, k, v))  # [H, L, hd]
        w = torch.softmax(qq @ kk.transpose(1, 2) * hd ** -0.5, dim=-1)
        outs.append((w @ vv).transpose(0, 1))
    o = torch.cat(outs, 0).reshape(n, d)
    return linear(sd, p + ".proj", o)


def linspace32(start, end, steps):
    return torch.linspace(start, end, steps, dtype=torch.float32)


def pos_embed_interpolate(vc, sd, grid_thw):
    """Qwen3VLVisionModel.fast_pos_embed_interpolate: the learned square table bilinearly
    resampled to each grid, in the processor's (merge-grouped) order, repeated per frame."""
    side = int(vc["num_position_embeddings"] ** 0.5)
    table = sd["model.visual.pos_embed.weight"]
    m = vc["spatial_merge_size"]
    out = []
    for t, h, w in grid_thw:
        hi, wi = linspace32(0, side - 1, h), linspace32(0, side - 1, w)
        hf, wf = hi.int(), wi.int()
        hc, wc = (hi.int() + 1).clip(max=side - 1), (wi.int() + 1).clip(max=side - 1)
        dh, dw = hi - hf, wi - wf
        idx = [(hf[None].T * side + wf[None]).flatten(), (hf[None].T * side + wc[None]).flatten(),
               (hc[None].T * side + wf[None]).flatten(), (hc[None].T * side + wc[None]).flatten()]
        wts = [((1 - dh)[None].T * (1 - dw)[None]).flatten(), ((1 - dh)[None].T * dw[None]).flatten(),
               (dh[None].T * (1 - dw)[None]).flatten(), (dh[None].T * dw[None]).flatten()]
        pe = [table[idx[i].long()] * wts[i][:, None] for i in range(4)]
        pe = pe[0] + pe[1] + pe[2] + pe[3]
        pe = pe.repeat(t, 1).view(t, h // m, m, w // m, m, -1).permute(0, 1, 3, 2, 4, 5).flatten(0, 4)
        out.append(pe)
    return torch.cat(out)


def qwen3_merger(sd, p, x, unit, post):
    """Qwen3VLVisionPatchMerger (post: use_postshuffle_norm, the deepstack mergers')."""
    d = x.shape[-1] * unit
    x = layer_norm(sd, p + "norm", x.view(-1, d), 1e-6) if post else layer_norm(sd, p + "norm", x, 1e-6).view(-1, d)
    return linear(sd, p + "linear_fc2", F.gelu(linear(sd, p + "linear_fc1", x)))


def vision_tower(arch, vc, sd, pixels, grid_thw, deepstack=None):
    """Qwen2VisionTransformerPretrainedModel / Qwen2_5_VisionTransformerPretrainedModel /
    Qwen3VLVisionModel.forward (Qwen3-VL's deepstack features appended to `deepstack`)."""
    p = "model.visual."
    if deepstack is None:
        deepstack = []
    C, T, P = vc["in_channels"], vc["temporal_patch_size"], vc["patch_size"]
    w = sd[p + "patch_embed.proj.weight"]
    # Conv3d with kernel = stride = (T, P, P) over [N, C, T, P, P] is a matmul over the flattened patch.
    x = F.conv3d(pixels.view(-1, C, T, P, P), w, sd.get(p + "patch_embed.proj.bias"), stride=(T, P, P)).view(-1, w.shape[0])
    if arch == "qwen3_vl":
        x = x + pos_embed_interpolate(vc, sd, grid_thw)
    rot = rot_pos_emb(vc, grid_thw)
    n = x.shape[0]
    unit = vc["spatial_merge_size"] ** 2
    cu = [0]
    for t, h, ww in grid_thw:
        for _ in range(t):
            cu.append(cu[-1] + h * ww)
    if arch == "qwen2_5_vl":
        window_index, cu_win = get_window_index(vc, grid_thw)
        cu_win = torch.unique_consecutive(torch.tensor(cu_win)).tolist()
        x = x.reshape(n // unit, unit, -1)[window_index].reshape(n, -1)
        rot = rot.reshape(n // unit, unit, -1)[window_index].reshape(n, -1)
    emb = torch.cat((rot, rot), -1)
    cos, sin = emb.cos(), emb.sin()
    for i in range(vc["depth"]):
        b = p + "blocks.%d." % i
        if arch == "qwen3_vl":
            h = layer_norm(sd, b + "norm1", x, 1e-6)
            x = x + vision_attention(sd, b + "attn", h, cu, cos, sin, vc["num_heads"])
            h = layer_norm(sd, b + "norm2", x, 1e-6)
            x = x + linear(sd, b + "mlp.linear_fc2", act(vc["hidden_act"], linear(sd, b + "mlp.linear_fc1", h)))
            if i in vc["deepstack_visual_indexes"]:
                k = vc["deepstack_visual_indexes"].index(i)
                deepstack.append(qwen3_merger(sd, p + "deepstack_merger_list.%d." % k, x, unit, True))
        elif arch == "qwen2_vl":
            h = layer_norm(sd, b + "norm1", x, 1e-6)
            x = x + vision_attention(sd, b + "attn", h, cu, cos, sin, vc["num_heads"])
            h = layer_norm(sd, b + "norm2", x, 1e-6)
            x = x + linear(sd, b + "mlp.fc2", act(vc["hidden_act"], linear(sd, b + "mlp.fc1", h)))
        else:
            segs = cu if i in vc["fullatt_block_indexes"] else cu_win
            h = rms_norm(sd, b + "norm1", x, 1e-6)
            x = x + vision_attention(sd, b + "attn", h, segs, cos, sin, vc["num_heads"])
            h = rms_norm(sd, b + "norm2", x, 1e-6)
            g = act(vc["hidden_act"], linear(sd, b + "mlp.gate_proj", h))
            x = x + linear(sd, b + "mlp.down_proj", g * linear(sd, b + "mlp.up_proj", h))
    if arch == "qwen3_vl":
        return qwen3_merger(sd, p + "merger.", x, unit, False)
    if arch == "qwen2_vl":
        h = layer_norm(sd, p + "merger.ln_q", x, 1e-6)
    else:
        h = rms_norm(sd, p + "merger.ln_q", x, 1e-6)
    h = h.view(-1, h.shape[-1] * unit)
    out = linear(sd, p + "merger.mlp.2", F.gelu(linear(sd, p + "merger.mlp.0", h)))
    if arch == "qwen2_5_vl":
        out = out[torch.argsort(window_index)]
    return out


# ----------------------------------------------------------------------------- decoder
def get_rope_index(arch, cfg, ids, image_grid, video_grid, second_per_grid_ts):
    """Qwen2VLModel.get_rope_index / Qwen2_5_VLModel.get_rope_index for one unpadded sequence."""
    m = cfg["vision_config"]["spatial_merge_size"]
    img, vid, vs = cfg["image_token_id"], cfg["video_token_id"], cfg["vision_start_token_id"]
    if not image_grid and not video_grid:
        pos = torch.arange(len(ids)).view(1, -1).expand(3, -1)
        return pos, 0
    if arch == "qwen3_vl" and video_grid:  # timestamps separate the frames: one grid per frame
        video_grid = [(1, h, w) for t, h, w in video_grid for _ in range(t)]
    tokens = list(ids)
    ids_t = torch.tensor(ids)
    starts = torch.argwhere(ids_t == vs).squeeze(1)
    vt = ids_t[starts + 1]
    n_img, n_vid = int((vt == img).sum()), int((vt == vid).sum())
    lst, st, ii, vi = [], 0, 0, 0
    ri, rv = n_img, n_vid
    for _ in range(n_img + n_vid):
        ed_i = tokens.index(img, st) if img in tokens and ri > 0 else len(tokens) + 1
        ed_v = tokens.index(vid, st) if vid in tokens and rv > 0 else len(tokens) + 1
        if ed_i < ed_v:
            t, h, w = image_grid[ii]
            sec = 0
            ii, ri, ed = ii + 1, ri - 1, ed_i
        else:
            t, h, w = video_grid[vi]
            sec = second_per_grid_ts[vi] if second_per_grid_ts is not None and arch == "qwen2_5_vl" else 1.0
            vi, rv, ed = vi + 1, rv - 1, ed_v
        lt, lh, lw = t, h // m, w // m
        text_len = ed - st
        st_idx = int(lst[-1].max()) + 1 if lst else 0
        lst.append(torch.arange(text_len).view(1, -1).expand(3, -1) + st_idx)
        if arch in ("qwen2_vl", "qwen3_vl"):
            t_index = torch.arange(lt).view(-1, 1).expand(-1, lh * lw).flatten()
        else:
            r = torch.arange(lt).view(-1, 1).expand(-1, lh * lw)
            sec_t = torch.as_tensor(sec, dtype=r.dtype)  # as transformers: an int64 tensor
            t_index = (r * sec_t * cfg["vision_config"]["tokens_per_second"]).long().flatten()
        h_index = torch.arange(lh).view(1, -1, 1).expand(lt, -1, lw).flatten()
        w_index = torch.arange(lw).view(1, 1, -1).expand(lt, lh, -1).flatten()
        lst.append(torch.stack([t_index, h_index, w_index]) + text_len + st_idx)
        st = ed + lt * lh * lw
    if st < len(tokens):
        st_idx = int(lst[-1].max()) + 1 if lst else 0
        lst.append(torch.arange(len(tokens) - st).view(1, -1).expand(3, -1) + st_idx)
    pos = torch.cat(lst, dim=1).reshape(3, -1)
    return pos, int(pos.max()) + 1 - len(tokens)


def mrope_cos_sin(tc, pos):
    """Qwen2VLRotaryEmbedding.forward then apply_multimodal_rotary_pos_emb's section selection."""
    hd = tc.get("head_dim", tc["hidden_size"] // tc["num_attention_heads"])
    inv = 1.0 / (tc["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    freqs = (inv[None, None, :, None].expand(3, 1, -1, 1) @ pos[:, None, None, :].float()).transpose(2, 3)  # [3, 1, T, hd/2]
    if tc["rope_scaling"].get("mrope_interleaved"):  # Qwen3VLTextRotaryEmbedding.apply_interleaved_mrope
        sec = tc["rope_scaling"]["mrope_section"]
        ft = freqs[0].clone()
        for dim, offset in ((1, 1), (2, 2)):
            idx = slice(offset, sec[dim] * 3, 3)
            ft[..., idx] = freqs[dim, ..., idx]
        emb = torch.cat((ft, ft), -1)
        return emb.cos()[0], emb.sin()[0]
    emb = torch.cat((freqs, freqs), -1)
    cos, sin = emb.cos(), emb.sin()
    sec = tc["rope_scaling"]["mrope_section"] * 2
    cos = torch.cat([c[i % 3] for i, c in enumerate(cos.split(sec, dim=-1))], dim=-1)  # [1, T, hd]
    sin = torch.cat([c[i % 3] for i, c in enumerate(sin.split(sec, dim=-1))], dim=-1)
    return cos[0], sin[0]


def decoder(tc, sd, x, cos, sin, visual=None, deepstack=()):
    """Qwen2VLTextModel (Qwen2's decoder) / Qwen3VLTextModel (Qwen3's, with DeepStack: after
    layer i the i-th deepstack features are added at the visual positions) over x [T, D]; returns
    logits [T, V]."""
    p = "model.language_model."
    T = x.shape[0]
    H, KV = tc["num_attention_heads"], tc["num_key_value_heads"]
    hd = tc.get("head_dim", tc["hidden_size"] // H)
    qwen3 = "head_dim" in tc
    eps = tc["rms_norm_eps"]
    mask = torch.full((T, T), NEG).triu(1)
    for i in range(tc["num_hidden_layers"]):
        b = p + "layers.%d." % i
        h = rms_norm(sd, b + "input_layernorm", x, eps)
        q = linear(sd, b + "self_attn.q_proj", h, not qwen3).view(T, H, hd)
        k = linear(sd, b + "self_attn.k_proj", h, not qwen3).view(T, KV, hd)
        v = linear(sd, b + "self_attn.v_proj", h, not qwen3).view(T, KV, hd).transpose(0, 1)
        if qwen3:
            q = rms_norm(sd, b + "self_attn.q_norm", q, eps)
            k = rms_norm(sd, b + "self_attn.k_norm", k, eps)
        q, k = q.transpose(0, 1), k.transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(H // KV, dim=0)
        v = v.repeat_interleave(H // KV, dim=0)
        w = torch.softmax(q @ k.transpose(1, 2) * hd ** -0.5 + mask, dim=-1)
        o = (w @ v).transpose(0, 1).reshape(T, H * hd)
        x = x + linear(sd, b + "self_attn.o_proj", o, bias=False)
        h = rms_norm(sd, b + "post_attention_layernorm", x, eps)
        g = F.silu(linear(sd, b + "mlp.gate_proj", h, False)) * linear(sd, b + "mlp.up_proj", h, False)
        x = x + linear(sd, b + "mlp.down_proj", g, False)
        if i < len(deepstack):
            x = x.clone()
            x[visual] = x[visual] + deepstack[i]
    x = rms_norm(sd, p + "norm", x, eps)
    return x @ sd["lm_head.weight"].t()


def forward(arch, cfg, sd, ids, pixels=None, image_grid=None, videos=None, video_grid=None, sec=None):
    tc = cfg["text_config"]
    x = sd["model.language_model.embed_tokens.weight"][torch.tensor(ids)]
    ds = {}
    for px, grid, tok in ((pixels, image_grid, cfg["image_token_id"]), (videos, video_grid, cfg["video_token_id"])):
        if px is None:
            continue
        ds[tok] = []
        feats = vision_tower(arch, cfg["vision_config"], sd, px, grid, ds[tok])
        m = torch.tensor(ids) == tok
        assert int(m.sum()) == feats.shape[0]
        x = x.clone()
        x[m] = feats
    # Qwen3VLModel.forward: the deepstack features of images and videos joined in sequence order.
    t = torch.tensor(ids)
    visual = (t == cfg["image_token_id"]) | (t == cfg["video_token_id"])
    deep = []
    for layer in range(len(cfg["vision_config"].get("deepstack_visual_indexes", []))):
        if not ds:
            break
        joint = torch.zeros(int(visual.sum()), x.shape[1])
        for tok, feats in ds.items():
            joint[(t == tok)[visual]] = feats[layer]
        deep.append(joint)
    pos, _ = get_rope_index(arch, cfg, ids, image_grid, video_grid, sec)
    cos, sin = mrope_cos_sin(tc, pos)
    return decoder(tc, sd, x, cos, sin, visual, deep), pos


def greedy(arch, cfg, sd, prompt, n, eos, **vis):
    ids = list(prompt)
    out = []
    for _ in range(n):
        logits, _ = forward(arch, cfg, sd, ids, **vis)
        nxt = int(torch.argmax(logits[-1]))
        out.append(nxt)
        ids.append(nxt)
        if nxt in eos:
            break
    return out


# ----------------------------------------------------------------------------- image processor
def patchify(frames, vc):
    """Qwen2VLImageProcessor._preprocess after resize/rescale/normalise: frames [F, C, H, W] →
    ([grid_t·grid_h·grid_w, C·T·P·P], (grid_t, grid_h, grid_w))."""
    T, P, m = vc["temporal_patch_size"], vc["patch_size"], vc["spatial_merge_size"]
    if frames.shape[0] % T != 0:
        frames = np.concatenate([frames, np.repeat(frames[-1:], T - frames.shape[0] % T, axis=0)], 0)
    C, H, W = frames.shape[1:]
    gt, gh, gw = frames.shape[0] // T, H // P, W // P
    p = frames.reshape(gt, T, C, gh // m, m, P, gw // m, m, P)
    p = p.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return p.reshape(gt * gh * gw, C * T * P * P), (gt, gh, gw)


def smart_resize(height, width, factor, min_pixels, max_pixels):
    """image_processing_qwen2_vl.py's smart_resize."""
    if height < 10 or width < 10:
        raise ValueError("too small")
    if max(height, width) / min(height, width) > 200:
        raise ValueError("aspect")
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def process(frames_u8, pp):
    """Qwen2VLImageProcessor._preprocess on uint8 HWC frames: smart_resize, PIL resize (the
    resample filter), rescale in float64 cast to float32, normalise in float32, patchify."""
    from PIL import Image
    h, w = frames_u8[0].shape[:2]
    rh, rw = smart_resize(h, w, pp["patch_size"] * pp["merge_size"], pp["min_pixels"], pp["max_pixels"])
    out = []
    for f in frames_u8:
        im = np.array(Image.fromarray(f).resize((rw, rh), resample=pp["resample"]))
        x = (im.astype(np.float64) * pp["rescale_factor"]).astype(np.float32)
        x = (x - np.array(pp["image_mean"], dtype=np.float32)) / np.array(pp["image_std"], dtype=np.float32)
        out.append(x.transpose(2, 0, 1))
    vc = {"temporal_patch_size": pp["temporal_patch_size"], "patch_size": pp["patch_size"], "spatial_merge_size": pp["merge_size"]}
    return patchify(np.stack(out), vc)


def processor_fixtures(d, pp):
    """An RGB PNG (45×37, resized to 32×24 by the max_pixels branch) and a 3-frame 20×13 video
    (resized up to 16×8… by smart_resize, last frame repeated), through process()."""
    from PIL import Image
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(37, 45, 3), dtype=np.uint8)
    Image.fromarray(img).save(os.path.join(d, "image.png"))
    px, grid = process([img], pp)
    save_npy(os.path.join(d, "pixel_values_png.npy"), px)
    vid = rng.integers(0, 256, size=(3, 13, 20, 3), dtype=np.uint8)
    save_npy(os.path.join(d, "video_frames_u8.npy"), vid.astype(np.float32))
    vpx, vgrid = process(list(vid), pp)
    save_npy(os.path.join(d, "pixel_values_video_frames.npy"), vpx)
    cases = [(h, w, f, lo, hi, *smart_resize(h, w, f, lo, hi)) for h, w, f, lo, hi in (
        (37, 45, 8, 64, 1024), (13, 20, 8, 64, 1024), (10, 2000, 28, 3136, 1003520), (1080, 1920, 28, 3136, 1003520),
        (480, 640, 28, 100352, 602112), (20, 12, 28, 3136, 12845056), (333, 333, 28, 3136, 1003520), (42, 70, 28, 3136, 1003520))]
    return {"image_grid_thw": list(grid), "video_grid_thw": list(vgrid), "smart_resize": cases}


# ----------------------------------------------------------------------------- configs
def make(arch):
    vision_start, vision_end, image, video = 120, 121, 122, 123
    text = {"vocab_size": 128, "hidden_size": 32, "intermediate_size": 32, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
            "hidden_act": "silu", "max_position_embeddings": 512, "tie_word_embeddings": False,
            "rope_scaling": {"type": "mrope", "mrope_section": [2, 1, 1]}}
    if arch == "qwen3_vl":
        text.update(head_dim=12, rope_scaling={"rope_type": "default", "mrope_section": [2, 2, 2], "mrope_interleaved": True},
                    attention_bias=False)
        vision = {"depth": 3, "hidden_size": 16, "out_hidden_size": 32, "intermediate_size": 24,
                  "hidden_act": "gelu_pytorch_tanh", "num_heads": 2, "in_channels": 3, "patch_size": 4,
                  "spatial_merge_size": 2, "temporal_patch_size": 2, "num_position_embeddings": 16,
                  "deepstack_visual_indexes": [1]}
    elif arch == "qwen2_vl":
        vision = {"depth": 2, "embed_dim": 16, "hidden_size": 32, "hidden_act": "quick_gelu", "mlp_ratio": 2,
                  "num_heads": 2, "in_channels": 3, "patch_size": 4, "spatial_merge_size": 2,
                  "temporal_patch_size": 2}
    else:
        vision = {"depth": 4, "hidden_size": 16, "out_hidden_size": 32, "intermediate_size": 24, "hidden_act": "silu",
                  "num_heads": 2, "in_channels": 3, "patch_size": 4, "spatial_merge_size": 2,
                  "temporal_patch_size": 2, "window_size": 16, "fullatt_block_indexes": [1, 3],
                  "tokens_per_second": 2}
    cfg = {"model_type": arch, "image_token_id": image, "video_token_id": video,
           "vision_start_token_id": vision_start, "vision_end_token_id": vision_end, "bos_token_id": 1,
           "eos_token_id": 2, "text_config": text, "vision_config": vision}
    sd = {}

    def w(name, *shape, std=0.2):
        sd[name] = torch.randn(*shape) * std

    D, V = text["hidden_size"], text["vocab_size"]
    H = text["num_attention_heads"]
    hd = text.get("head_dim", D // H)
    kv = text["num_key_value_heads"] * hd
    qwen3 = arch == "qwen3_vl"
    p = "model.language_model."
    w(p + "embed_tokens.weight", V, D, std=1.0)
    for i in range(text["num_hidden_layers"]):
        b = p + "layers.%d." % i
        for n, o in (("q", H * hd), ("k", kv), ("v", kv)):
            w(b + "self_attn.%s_proj.weight" % n, o, D)
            if not qwen3:
                w(b + "self_attn.%s_proj.bias" % n, o)
        if qwen3:
            sd[b + "self_attn.q_norm.weight"] = 1 + 0.1 * torch.randn(hd)
            sd[b + "self_attn.k_norm.weight"] = 1 + 0.1 * torch.randn(hd)
        w(b + "self_attn.o_proj.weight", D, H * hd)
        w(b + "mlp.gate_proj.weight", text["intermediate_size"], D)
        w(b + "mlp.up_proj.weight", text["intermediate_size"], D)
        w(b + "mlp.down_proj.weight", D, text["intermediate_size"])
        sd[b + "input_layernorm.weight"] = 1 + 0.1 * torch.randn(D)
        sd[b + "post_attention_layernorm.weight"] = 1 + 0.1 * torch.randn(D)
    sd[p + "norm.weight"] = 1 + 0.1 * torch.randn(D)
    w("lm_head.weight", V, D)
    vp = "model.visual."
    E = vision.get("embed_dim", vision["hidden_size"])
    out = vision["hidden_size"] if arch == "qwen2_vl" else vision["out_hidden_size"]
    C, T, P = vision["in_channels"], vision["temporal_patch_size"], vision["patch_size"]
    w(vp + "patch_embed.proj.weight", E, C, T, P, P, std=0.1)
    inter = E * vision["mlp_ratio"] if arch == "qwen2_vl" else vision["intermediate_size"]
    if qwen3:
        w(vp + "patch_embed.proj.bias", E)
        w(vp + "pos_embed.weight", vision["num_position_embeddings"], E, std=0.5)
        for i in range(vision["depth"]):
            b = vp + "blocks.%d." % i
            for n in ("norm1", "norm2"):
                sd[b + n + ".weight"] = 1 + 0.1 * torch.randn(E)
                w(b + n + ".bias", E, std=0.1)
            w(b + "attn.qkv.weight", 3 * E, E)
            w(b + "attn.qkv.bias", 3 * E)
            w(b + "attn.proj.weight", E, E)
            w(b + "attn.proj.bias", E)
            w(b + "mlp.linear_fc1.weight", inter, E)
            w(b + "mlp.linear_fc1.bias", inter)
            w(b + "mlp.linear_fc2.weight", E, inter)
            w(b + "mlp.linear_fc2.bias", E)
        for pre, nd in [("merger.", E)] + [("deepstack_merger_list.%d." % k, 4 * E) for k in range(len(vision["deepstack_visual_indexes"]))]:
            sd[vp + pre + "norm.weight"] = 1 + 0.1 * torch.randn(nd)
            w(vp + pre + "norm.bias", nd, std=0.1)
            w(vp + pre + "linear_fc1.weight", 4 * E, 4 * E)
            w(vp + pre + "linear_fc1.bias", 4 * E)
            w(vp + pre + "linear_fc2.weight", out, 4 * E)
            w(vp + pre + "linear_fc2.bias", out)
        return cfg, sd
    for i in range(vision["depth"]):
        b = vp + "blocks.%d." % i
        sd[b + "norm1.weight"] = 1 + 0.1 * torch.randn(E)
        sd[b + "norm2.weight"] = 1 + 0.1 * torch.randn(E)
        if arch == "qwen2_vl":
            w(b + "norm1.bias", E, std=0.1)
            w(b + "norm2.bias", E, std=0.1)
        w(b + "attn.qkv.weight", 3 * E, E)
        w(b + "attn.qkv.bias", 3 * E)
        w(b + "attn.proj.weight", E, E)
        w(b + "attn.proj.bias", E)
        if arch == "qwen2_vl":
            w(b + "mlp.fc1.weight", inter, E)
            w(b + "mlp.fc1.bias", inter)
            w(b + "mlp.fc2.weight", E, inter)
            w(b + "mlp.fc2.bias", E)
        else:
            for n, shape in (("gate_proj", (inter, E)), ("up_proj", (inter, E)), ("down_proj", (E, inter))):
                w(b + "mlp.%s.weight" % n, *shape)
                w(b + "mlp.%s.bias" % n, shape[0])
    sd[vp + "merger.ln_q.weight"] = 1 + 0.1 * torch.randn(E)
    if arch == "qwen2_vl":
        w(vp + "merger.ln_q.bias", E, std=0.1)
    w(vp + "merger.mlp.0.weight", 4 * E, 4 * E)
    w(vp + "merger.mlp.0.bias", 4 * E)
    w(vp + "merger.mlp.2.weight", out, 4 * E)
    w(vp + "merger.mlp.2.bias", out)
    return cfg, sd


def flat_config(arch, cfg):
    """The transformers 4.x config.json: text fields at the top, vision_config nested."""
    out = {"architectures": [ARCH[arch]], "model_type": arch, "torch_dtype": "float32"}
    out.update(cfg["text_config"])
    for k in ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id", "bos_token_id",
              "eos_token_id"):
        out[k] = cfg[k]
    out["vision_config"] = cfg["vision_config"]
    return out


def nested_config(arch, cfg):
    """The transformers 5.x config.json: text_config and vision_config."""
    out = {"architectures": [ARCH[arch]], "model_type": arch, "dtype": "float32"}
    for k in ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id"):
        out[k] = cfg[k]
    tc = dict(cfg["text_config"], model_type=arch + "_text", bos_token_id=1, eos_token_id=2)
    tc["rope_parameters"] = {"rope_type": "default", "rope_theta": tc.pop("rope_theta"),
                             "mrope_section": tc.pop("rope_scaling")["mrope_section"]}
    out["text_config"] = tc
    out["vision_config"] = dict(cfg["vision_config"], model_type=arch)
    return out


ARCH = {"qwen2_vl": "Qwen2VLForConditionalGeneration", "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration",
        "qwen3_vl": "Qwen3VLForConditionalGeneration"}
MEAN, STD = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]


def main():
    for arch, name, layout in (("qwen2_vl", "qwen2vl-tiny", 4), ("qwen2_5_vl", "qwen2.5vl-tiny", 5),
                               ("qwen3_vl", "qwen3vl-tiny", 5)):
        cfg, sd = make(arch)
        vc = cfg["vision_config"]
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        if layout == 4:  # transformers 4.x names: model.* (decoder), visual.*, lm_head
            names = {k: ("visual." + k[len("model.visual."):] if k.startswith("model.visual.") else
                         "model." + k[len("model.language_model."):] if k.startswith("model.language_model.") else k)
                     for k in sd}
            config = flat_config(arch, cfg)
        elif arch == "qwen3_vl":  # transformers 4.57's Qwen3-VL config: text_config with rope_scaling
            names = {k: k for k in sd}
            config = {"architectures": [ARCH[arch]], "model_type": arch, "dtype": "float32", "tie_word_embeddings": False}
            for k in ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id"):
                config[k] = cfg[k]
            config["text_config"] = dict(cfg["text_config"], model_type="qwen3_vl_text", bos_token_id=1, eos_token_id=2)
            config["vision_config"] = dict(cfg["vision_config"], model_type="qwen3_vl")
        else:
            names = {k: k for k in sd}
            config = nested_config(arch, cfg)
        write_safetensors(os.path.join(d, "model.safetensors"), {names[k]: v for k, v in sd.items()})
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
        with open(os.path.join(d, "generation_config.json"), "w") as f:
            json.dump({"bos_token_id": 1, "eos_token_id": 2}, f)
        with open(os.path.join(d, "preprocessor_config.json"), "w") as f:
            json.dump({"image_processor_type": "Qwen2VLImageProcessor", "do_resize": True, "resample": 3,
                       "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True, "image_mean": MEAN,
                       "image_std": STD, "min_pixels": 64, "max_pixels": 1024, "patch_size": 4,
                       "temporal_patch_size": 2, "merge_size": 2, "do_convert_rgb": True}, f, indent=2)
        g = torch.Generator().manual_seed(1)
        # An image of 16×24 pixels (grid 1×4×6: 24 patches, 6 merged tokens) and a 4-frame video of
        # 16×16 (grid 2×4×4: 32 patches, 8 tokens), both already processed to [0, 1] then normalised.
        frames_img = torch.rand(1, 3, 16, 24, generator=g).numpy()
        frames_vid = torch.rand(4, 3, 16, 16, generator=g).numpy()
        pix, ig = patchify(frames_img, vc)
        vid, vg = patchify(frames_vid, vc)
        pix, vid = torch.from_numpy(pix.astype(np.float32)), torch.from_numpy(vid.astype(np.float32))
        save_npy(os.path.join(d, "frames_image.npy"), frames_img)
        save_npy(os.path.join(d, "frames_video.npy"), frames_vid)
        save_npy(os.path.join(d, "pixel_values.npy"), pix.numpy())
        save_npy(os.path.join(d, "pixel_values_videos.npy"), vid.numpy())
        sec = [2.0]
        ds_img, ds_vid = [], []
        tower_img = vision_tower(arch, vc, sd, pix, [ig], ds_img)
        tower_vid = vision_tower(arch, vc, sd, vid, [vg], ds_vid)
        if ds_img:  # Qwen3-VL: the deepstack features, layer after layer: [layers·n, D]
            save_npy(os.path.join(d, "image_deepstack.npy"), torch.cat(ds_img).numpy())
            save_npy(os.path.join(d, "video_deepstack.npy"), torch.cat(ds_vid).numpy())
        save_npy(os.path.join(d, "image_embeds.npy"), tower_img.numpy())
        save_npy(os.path.join(d, "video_embeds.npy"), tower_vid.numpy())
        VS, VE, IMG, VID = 120, 121, 122, 123
        text = [1, 17, 33, 5, 90]
        image_seq = [1, 17, VS] + [IMG] * 6 + [VE, 40, 41, 7]
        video_seq = [1, 9, VS] + [VID] * 8 + [VE, 60, 61]
        both = [1, VS] + [IMG] * 6 + [VE, 44, VS] + [VID] * 8 + [VE, 3, 70]
        cases = {
            "text": dict(ids=text),
            "image": dict(ids=image_seq, pixels=pix, image_grid=[ig]),
            "video": dict(ids=video_seq, videos=vid, video_grid=[vg], sec=sec),
            "image_video": dict(ids=both, pixels=pix, image_grid=[ig], videos=vid, video_grid=[vg], sec=sec),
        }
        if arch == "qwen3_vl":  # Qwen3VLProcessor's layout: "<t seconds>" then a block per frame
            frames = [1, 9, 50, 51, VS] + [VID] * 4 + [VE, 52, 53, VS] + [VID] * 4 + [VE, 60]
            cases["video_frames"] = dict(ids=frames, videos=vid, video_grid=[vg], sec=sec)
        expected = {"image_grid_thw": [list(ig)], "video_grid_thw": [list(vg)], "second_per_grid_ts": sec,
                    "cases": {}}
        if layout == 4:
            pp = json.load(open(os.path.join(d, "preprocessor_config.json")))
            expected["processor"] = processor_fixtures(d, pp)
            # image.png end to end (processor + model), for `reel hf run --image`
            png = torch.from_numpy(np.load(os.path.join(d, "pixel_values_png.npy")))
            pg = tuple(expected["processor"]["image_grid_thw"])
            ids = [1, 17, VS] + [IMG] * (pg[0] * pg[1] * pg[2] // 4) + [VE, 40, 7]
            logits, _ = forward(arch, cfg, sd, ids, pixels=png, image_grid=[pg])
            save_npy(os.path.join(d, "logits_image_png.npy"), logits.numpy())
            expected["image_png"] = {"tokens": ids}
            # A WordLevel tokenizer.json (whitespace words) for `reel hf generate --prompt`: the
            # processor puts the vision block first, then the prompt's words.
            words = {"[UNK]": 0, "<|endoftext|>": 2, "describe": 30, "this": 31, "image": 32}
            added = [{"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
                      "normalized": False, "special": True} for i, c in
                     ((2, "<|endoftext|>"), (VS, "<|vision_start|>"), (VE, "<|vision_end|>"), (IMG, "<|image_pad|>"),
                      (VID, "<|video_pad|>"))]
            with open(os.path.join(d, "tokenizer.json"), "w") as f:
                json.dump({"version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
                           "normalizer": None, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": None,
                           "decoder": None, "model": {"type": "WordLevel", "vocab": words, "unk_token": "[UNK]"}}, f)
            prompt = [VS] + [IMG] * (pg[0] * pg[1] * pg[2] // 4) + [VE, 30, 31, 32]
            expected["generate_png"] = {"prompt_text": "describe this image", "prompt": prompt,
                                        "generated": greedy(arch, cfg, sd, prompt, 5, [2], pixels=png, image_grid=[pg])}
        for cname, c in cases.items():
            ids = c.pop("ids")
            logits, pos = forward(arch, cfg, sd, ids, **c)
            save_npy(os.path.join(d, "logits_%s.npy" % cname), logits.numpy())
            expected["cases"][cname] = {"tokens": ids, "position_ids": pos.tolist()}
        with torch.no_grad():
            gen = greedy(arch, cfg, sd, image_seq, 6, [2], pixels=pix, image_grid=[ig])
        expected["generate"] = {"prompt": image_seq, "generated": gen}
        gen = greedy(arch, cfg, sd, video_seq, 6, [2], videos=vid, video_grid=[vg], sec=sec)
        expected["generate_video"] = {"prompt": video_seq, "generated": gen}
        with open(os.path.join(d, "expected.json"), "w") as f:
            json.dump(expected, f)
        print(name, {k: os.path.getsize(os.path.join(d, k)) for k in sorted(os.listdir(d))})


if __name__ == "__main__":
    with torch.no_grad():
        main()
