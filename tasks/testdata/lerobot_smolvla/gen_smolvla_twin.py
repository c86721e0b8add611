#!/usr/bin/env python3
"""An independent PyTorch twin of LeRobot's SmolVLA and the tiny LeRobot-layout smolvla directory it checks.

Written from huggingface/lerobot src/lerobot/policies/smolvla/modeling_smolvla.py (VLAFlowMatching.embed_prefix,
embed_suffix, forward, sample_actions, denoise_step; SmolVLAPolicy.forward's mean over the real action
dimensions), src/lerobot/policies/smolvla/smolvlm_with_expert.py (apply_rope with max_wavelength 10000,
forward_attn_layer, forward_cross_attn_layer — the expert's k_proj/v_proj of the VLM's post-RoPE keys and
values, expert positions restarted at 0 —, eager_attention_forward, get_model_layers), src/lerobot/policies/
common/{vla_utils.py,flow_matching.py} (create_sinusoidal_pos_embedding, make_att_2d_masks, euler_integrate)
and src/lerobot/processor/normalize_processor.py (MEAN_STD: (x−mean)/(std+eps), eps 1e-8), with the SmolVLM2
pieces from transformers src/transformers/models/{idefics3,smolvlm,llama}/modeling_*.py (SigLIP-style vision
transformer with post_layernorm, the connector's pixel_shuffle and bias-free modality_projection, Llama
RMSNorm and SiLU-gated MLP). No transformers or lerobot import: torch 1.13 (Debian python3-torch) and the
standard library only.

Run: /usr/bin/python3 gen_smolvla_twin.py   (writes tiny/ and parity.safetensors here)

LeRobot's SmolVLAConfig takes the VLM's sizes from vlm_model_name (SmolVLM2-500M), so the tiny directory is
LeRobot's *layout* (names, config keys, processor files) at sizes only reel's shape-inferring loader opens;
SmolVLM2's conventions are kept: heads of width 64 in the vision tower and the text model, state/action
padded to 32, the expert as deep as the cut VLM (num_expert_layers -1).
"""
import json
import math
import os
import struct

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(0)

IMG, PATCH, VH, VMLP, VLAYERS, SCALE = 16, 4, 64, 16, 1, 2  # vision: 4x4 patches, 1 head of 64; 4 tokens/image
D, HEADS, HD, KV, MLP, LAYERS, VOCAB = 16, 2, 64, 1, 16, 3, 64  # the cut SmolVLM2 text model (num_vlm_layers 3)
E, EMLP = 12, 16  # the expert: expert_width_multiplier 0.75
EVERY = 2  # self_attn_every_n_layers: layers 0 and 2 joint self-attention, layer 1 cross-attention
PAD = 32
CHUNK, NSTEPS, STEPS = 5, 3, 10
SDIM, ADIM = 6, 6
B, L = 2, 6
EPS = 1e-5  # SmolVLM2 text rms_norm_eps


def rnd(*shape, s=0.2):
    return torch.randn(*shape) * s


# ---- weights under LeRobot's module names (SmolVLAPolicy.model = VLAFlowMatching) ----
W = {}
vlm = "model.vlm_with_expert.vlm."
vt = vlm + "model.vision_model."
tm = vlm + "model.text_model."
ex = "model.vlm_with_expert.lm_expert."
W[vt + "embeddings.patch_embedding.weight"] = rnd(VH, 3, PATCH, PATCH, s=0.1)
W[vt + "embeddings.patch_embedding.bias"] = rnd(VH, s=0.1)
W[vt + "embeddings.position_embedding.weight"] = rnd((IMG // PATCH) ** 2, VH, s=0.1)
for i in range(VLAYERS):
    p = vt + f"encoder.layers.{i}."
    for n in ("layer_norm1", "layer_norm2"):
        W[p + n + ".weight"] = 1 + rnd(VH, s=0.1)
        W[p + n + ".bias"] = rnd(VH, s=0.1)
    for n in ("q_proj", "k_proj", "v_proj", "out_proj"):
        W[p + "self_attn." + n + ".weight"] = rnd(VH, VH, s=0.12)
        W[p + "self_attn." + n + ".bias"] = rnd(VH, s=0.05)
    W[p + "mlp.fc1.weight"] = rnd(VMLP, VH, s=0.12)
    W[p + "mlp.fc1.bias"] = rnd(VMLP, s=0.05)
    W[p + "mlp.fc2.weight"] = rnd(VH, VMLP, s=0.12)
    W[p + "mlp.fc2.bias"] = rnd(VH, s=0.05)
W[vt + "post_layernorm.weight"] = 1 + rnd(VH, s=0.1)
W[vt + "post_layernorm.bias"] = rnd(VH, s=0.1)
W[vlm + "model.connector.modality_projection.proj.weight"] = rnd(D, VH * SCALE * SCALE, s=0.1)
W[tm + "embed_tokens.weight"] = rnd(VOCAB, D, s=0.2)
W[vlm + "lm_head.weight"] = rnd(VOCAB, D, s=0.1)  # SmolVLMForConditionalGeneration's head: saved, never run


def cross(i):  # SmolVLMWithExpertModel.forward, attention_mode cross_attn
    return not (EVERY > 0 and i % EVERY == 0)


def llama_layers(prefix, width, mlp, expert):
    for i in range(LAYERS):
        p = prefix + f"layers.{i}."
        kin = KV * HD if expert and cross(i) else width  # cross layers' k/v read the VLM's keys and values
        W[p + "input_layernorm.weight"] = 1 + rnd(width, s=0.2)
        W[p + "post_attention_layernorm.weight"] = 1 + rnd(width, s=0.2)
        W[p + "self_attn.q_proj.weight"] = rnd(HEADS * HD, width, s=0.2)
        W[p + "self_attn.k_proj.weight"] = rnd(KV * HD, kin, s=0.2)
        W[p + "self_attn.v_proj.weight"] = rnd(KV * HD, kin, s=0.2)
        W[p + "self_attn.o_proj.weight"] = rnd(width, HEADS * HD, s=0.1)
        W[p + "mlp.gate_proj.weight"] = rnd(mlp, width, s=0.2)
        W[p + "mlp.up_proj.weight"] = rnd(mlp, width, s=0.2)
        W[p + "mlp.down_proj.weight"] = rnd(width, mlp, s=0.2)
    W[prefix + "norm.weight"] = 1 + rnd(width, s=0.2)


llama_layers(tm, D, MLP, False)
llama_layers(ex, E, EMLP, True)
for n, (o, i) in {"action_in_proj": (E, PAD), "action_out_proj": (PAD, E), "state_proj": (D, PAD),
                  "action_time_mlp_in": (E, 2 * E), "action_time_mlp_out": (E, E)}.items():
    W["model." + n + ".weight"] = rnd(o, i, s=0.25)
    W["model." + n + ".bias"] = rnd(o, s=0.1)

STATS = {
    "observation.state.mean": rnd(SDIM, s=1.0), "observation.state.std": 0.5 + torch.rand(SDIM),
    "action.mean": rnd(ADIM, s=1.0), "action.std": 0.5 + torch.rand(ADIM),
}


# ---- the twin ----
def linear(x, name):
    return F.linear(x, W[name + ".weight"], W.get(name + ".bias"))


def vision(px):  # Idefics3VisionTransformer: [B, 3, S, S] in [-1, 1] -> last_hidden_state [B, N, VH]
    x = F.conv2d(px, W[vt + "embeddings.patch_embedding.weight"], W[vt + "embeddings.patch_embedding.bias"], stride=PATCH)
    x = x.flatten(2).transpose(1, 2) + W[vt + "embeddings.position_embedding.weight"][None]
    nh = VH // 64
    for i in range(VLAYERS):
        p = vt + f"encoder.layers.{i}."
        h = F.layer_norm(x, (VH,), W[p + "layer_norm1.weight"], W[p + "layer_norm1.bias"], 1e-6)
        b, t, _ = h.shape
        q, k, v = (linear(h, p + "self_attn." + n).view(b, t, nh, -1).transpose(1, 2) for n in ("q_proj", "k_proj", "v_proj"))
        a = torch.softmax((q @ k.transpose(-1, -2)) * (VH // nh) ** -0.5, dim=-1, dtype=torch.float32) @ v
        x = x + linear(a.transpose(1, 2).reshape(b, t, VH), p + "self_attn.out_proj")
        h = F.layer_norm(x, (VH,), W[p + "layer_norm2.weight"], W[p + "layer_norm2.bias"], 1e-6)
        x = x + linear(F.gelu(linear(h, p + "mlp.fc1"), approximate="tanh"), p + "mlp.fc2")
    return F.layer_norm(x, (VH,), W[vt + "post_layernorm.weight"], W[vt + "post_layernorm.bias"], 1e-6)


def connector(x, s=SCALE):  # Idefics3Connector: pixel_shuffle then modality_projection (no bias)
    bsz, seq, dim = x.size()
    h = w = int(seq ** 0.5)
    x = x.view(bsz, h, w, dim)
    x = x.view(bsz, h, int(w / s), dim * s)
    x = x.permute(0, 2, 1, 3)
    x = x.reshape(bsz, int(w / s), int(h / s), dim * (s ** 2))
    x = x.permute(0, 2, 1, 3)
    x = x.reshape(bsz, int(seq / (s ** 2)), dim * (s ** 2))
    return F.linear(x, W[vlm + "model.connector.modality_projection.proj.weight"])


def rmsnorm(x, w):  # LlamaRMSNorm
    var = x.float().pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + EPS))


def apply_rope(x, positions, max_wavelength=10_000):  # smolvlm_with_expert.apply_rope, x [B, L, H, D]
    d_half = x.shape[-1] // 2
    freq_exponents = (2.0 / x.shape[-1]) * torch.arange(d_half, dtype=torch.float32)
    timescale = max_wavelength ** freq_exponents
    radians = positions[..., None].to(torch.float32) / timescale[None, None, :].to(torch.float32)
    radians = radians[..., None, :]
    sin, cos = torch.sin(radians), torch.cos(radians)
    x1, x2 = x.split(d_half, dim=-1)
    res = torch.empty_like(x)
    res[..., :d_half] = x1 * cos - x2 * sin
    res[..., d_half:] = x2 * cos + x1 * sin
    return res


def attention(mask, q, k, v):  # eager_attention_forward: q [B, Lq, H, hd], k/v [B, Lk, KV, hd]
    b, lk = k.shape[:2]
    g = HEADS // KV
    k = k[:, :, :, None, :].expand(b, lk, KV, g, HD).reshape(b, lk, HEADS, HD)
    v = v[:, :, :, None, :].expand(b, lk, KV, g, HD).reshape(b, lk, HEADS, HD)
    w = torch.matmul(q.transpose(1, 2), k.transpose(1, 2).transpose(2, 3)) * HD ** -0.5
    w = torch.where(mask[:, None, :, :], w, torch.tensor(torch.finfo(w.dtype).min))
    p = F.softmax(w, dim=-1)
    o = torch.matmul(p, v.permute(0, 2, 1, 3)).permute(0, 2, 1, 3)
    return o.reshape(b, -1, HEADS * HD)


def qkv(p, x):
    h = rmsnorm(x, W[p + "input_layernorm.weight"])
    b, t = h.shape[:2]
    return tuple(linear(h, p + "self_attn." + n).view(b, t, -1, HD) for n in ("q_proj", "k_proj", "v_proj"))


def finish(p, x, o):
    x = linear(o, p + "self_attn.o_proj") + x
    h = rmsnorm(x, W[p + "post_attention_layernorm.weight"])
    return x + linear(F.silu(linear(h, p + "mlp.gate_proj")) * linear(h, p + "mlp.up_proj"), p + "mlp.down_proj")


def with_expert(mask, pos, prefix, suffix, cache=None):
    """SmolVLMWithExpertModel.forward: prefix/suffix may be None; cache is the list of per-layer
    (k, v) of the prefix (filled when prefix is given and suffix None, the prefill)."""
    fill = prefix is not None and suffix is None
    if fill:
        cache = []
    for i in range(LAYERS):
        vp, ep = tm + f"layers.{i}.", ex + f"layers.{i}."
        if fill or not cross(i):  # forward_attn_layer
            qs, ks, vs, sizes = [], [], [], []
            for pre, x in ((vp, prefix), (ep, suffix)):
                if x is None:
                    continue
                q, k, v = qkv(pre, x)
                qs.append(q); ks.append(k); vs.append(v); sizes.append(x.shape[1])
            q, k, v = torch.cat(qs, 1), torch.cat(ks, 1), torch.cat(vs, 1)
            q, k = apply_rope(q, pos), apply_rope(k, pos)
            if fill:
                cache.append((k, v))
            elif cache is not None:  # the DynamicCache update: [prefix; suffix]
                k, v = torch.cat([cache[i][0], k], 1), torch.cat([cache[i][1], v], 1)
            o = attention(mask, q, k, v)
            outs, off = [], 0
            for pre, x in ((vp, prefix), (ep, suffix)):
                if x is None:
                    outs.append(None)
                    continue
                outs.append(finish(pre, x, o[:, off:off + x.shape[1]]))
                off += x.shape[1]
            prefix, suffix = outs
        else:  # forward_cross_attn_layer
            if prefix is not None:
                tp = prefix.shape[1]
                q, k, v = qkv(vp, prefix)
                q, k = apply_rope(q, pos[:, :tp]), apply_rope(k, pos[:, :tp])
                op = attention(mask[:, :tp, :tp], q, k, v)
                epos = pos[:, tp:]
            else:
                k, v = cache[i]
                epos = pos
            h = rmsnorm(suffix, W[ep + "input_layernorm.weight"])
            b, ts = h.shape[:2]
            eq = linear(h, ep + "self_attn.q_proj").view(b, ts, -1, HD)
            ek = linear(k.reshape(*k.shape[:2], -1), ep + "self_attn.k_proj").view(b, k.shape[1], -1, HD)
            ev = linear(v.reshape(*v.shape[:2], -1), ep + "self_attn.v_proj").view(b, v.shape[1], -1, HD)
            epos = epos - torch.min(epos, dim=1, keepdim=True).values
            em = mask[:, -ts:, :ek.shape[1]]
            oe = attention(em, apply_rope(eq, epos), ek, ev)
            if prefix is not None:
                prefix = finish(vp, prefix, op)
            suffix = finish(ep, suffix, oe)
    out = [None if prefix is None else rmsnorm(prefix, W[tm + "norm.weight"]),
           None if suffix is None else rmsnorm(suffix, W[ex + "norm.weight"])]
    return out, cache


def att_2d(pad, att):  # make_att_2d_masks
    c = torch.cumsum(att, dim=1)
    return (c[:, None, :] <= c[:, :, None]) & (pad[:, None, :] & pad[:, :, None])


def embed_prefix(images, tokens, state):
    embs, pads, att = [], [], []
    for img in images:  # [B, 3, S, S] in [0, 1]
        e = connector(vision(img * 2.0 - 1.0))
        e = e * torch.tensor(e.shape[-1] ** 0.5, dtype=e.dtype)
        embs.append(e)
        pads.append(torch.ones(e.shape[:2], dtype=torch.bool))
        att += [0] * e.shape[1]
    lang = W[tm + "embed_tokens.weight"][tokens] * math.sqrt(D)
    embs.append(lang)
    pads.append(tokens != 0)
    att += [0] * tokens.shape[1]
    embs.append(linear(state, "model.state_proj")[:, None])
    pads.append(torch.ones(state.shape[0], 1, dtype=torch.bool))
    att += [1]
    return torch.cat(embs, 1), torch.cat(pads, 1), torch.tensor(att, dtype=torch.bool)[None].expand(tokens.shape[0], -1)


def sincos(t, dim, lo=4e-3, hi=4.0):  # create_sinusoidal_pos_embedding
    frac = torch.linspace(0.0, 1.0, dim // 2, dtype=torch.float64)
    period = lo * (hi / lo) ** frac
    x = t[:, None] * (1.0 / period * 2 * math.pi)[None]
    return torch.cat([torch.sin(x), torch.cos(x)], -1).type(t.dtype)


def embed_suffix(xt, t):
    act = linear(xt, "model.action_in_proj")
    te = sincos(t, E)[:, None].expand_as(act)
    y = linear(F.silu(linear(torch.cat([act, te], 2), "model.action_time_mlp_in")), "model.action_time_mlp_out")
    b = xt.shape[0]
    return y, torch.ones(b, CHUNK, dtype=torch.bool), torch.ones(b, CHUNK, dtype=torch.bool)


def pad(x):
    return F.pad(x, (0, PAD - x.shape[-1]))


def normalize(x, key):
    return (x - STATS[key + ".mean"]) / (STATS[key + ".std"] + 1e-8)


def loss(images, tokens, state, actions, noise, time):  # SmolVLAPolicy.forward, reduction mean
    st, a = pad(normalize(state, "observation.state")), pad(normalize(actions, "action"))
    te = time[:, None, None]
    xt, u = te * noise + (1 - te) * a, noise - a
    pe, pp, pa = embed_prefix(images, tokens, st)
    se, sp, sa = embed_suffix(xt, time)
    padm, attm = torch.cat([pp, sp], 1), torch.cat([pa, sa], 1)
    pos = torch.cumsum(padm, dim=1) - 1
    (_, so), _ = with_expert(att_2d(padm, attm), pos, pe, se)
    v = linear(so[:, -CHUNK:], "model.action_out_proj")
    return F.mse_loss(u, v, reduction="none")[:, :, :ADIM].mean()


def sample(images, tokens, state, noise):  # predict_action_chunk, then the postprocessor's unnormalize
    st = pad(normalize(state, "observation.state"))
    pe, pp, pa = embed_prefix(images, tokens, st)
    _, kv = with_expert(att_2d(pp, pa), torch.cumsum(pp, dim=1) - 1, pe, None)
    x, dt = noise, -1.0 / STEPS
    for step in range(STEPS):
        t = torch.tensor(1.0 + step * dt, dtype=torch.float32).expand(noise.shape[0])
        se, sp, sa = embed_suffix(x, t)
        m = torch.cat([pp[:, None, :].expand(-1, sp.shape[1], -1), att_2d(sp, sa)], 2)
        pos = torch.sum(pp, -1)[:, None] + torch.cumsum(sp, dim=1) - 1
        (_, so), _ = with_expert(m, pos, None, se, cache=kv)
        x = x + dt * linear(so[:, -CHUNK:], "model.action_out_proj")
    return x[:, :, :ADIM] * (STATS["action.std"] + 1e-8) + STATS["action.mean"]


# ---- files ----
def save_safetensors(path, tensors, metadata=None):
    header, off, blobs = {}, 0, []
    for k in sorted(tensors):
        b = tensors[k].contiguous().float().numpy().tobytes()
        header[k] = {"dtype": "F32", "shape": list(tensors[k].shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    d = os.path.join(HERE, "tiny")
    os.makedirs(d, exist_ok=True)
    cam = "observation.images.cam"
    inputs = {cam: {"type": "VISUAL", "shape": [3, IMG, IMG]}, "observation.state": {"type": "STATE", "shape": [SDIM]}}
    outputs = {"action": {"type": "ACTION", "shape": [ADIM]}}
    norm_map = {"VISUAL": "IDENTITY", "STATE": "MEAN_STD", "ACTION": "MEAN_STD"}
    cfg = {"type": "smolvla", "n_obs_steps": 1, "input_features": inputs, "output_features": outputs,
           "device": "cpu", "use_amp": False, "push_to_hub": False, "repo_id": None, "private": None, "tags": None,
           "license": None, "pretrained_path": None, "chunk_size": CHUNK, "n_action_steps": NSTEPS,
           "normalization_mapping": norm_map, "max_state_dim": PAD, "max_action_dim": PAD,
           "resize_imgs_with_padding": [IMG, IMG], "empty_cameras": 0, "adapt_to_pi_aloha": False,
           "use_delta_joint_actions_aloha": False, "tokenizer_max_length": L, "num_steps": STEPS, "use_cache": True,
           "freeze_vision_encoder": True, "train_expert_only": True, "train_state_proj": True,
           "optimizer_lr": 0.0001, "optimizer_betas": [0.9, 0.95], "optimizer_eps": 1e-08,
           "optimizer_weight_decay": 1e-10, "optimizer_grad_clip_norm": 10, "scheduler_warmup_steps": 1000,
           "scheduler_decay_steps": 30000, "scheduler_decay_lr": 2.5e-06,
           "vlm_model_name": "HuggingFaceTB/SmolVLM2-500M-Video-Instruct", "load_vlm_weights": False,
           "add_image_special_tokens": False, "attention_mode": "cross_attn", "prefix_length": -1,
           "pad_language_to": "max_length", "num_expert_layers": -1, "num_vlm_layers": LAYERS,
           "self_attn_every_n_layers": EVERY, "expert_width_multiplier": E / D, "min_period": 0.004,
           "max_period": 4.0, "rtc_config": None, "compile_model": False, "compile_mode": "max-autotune"}
    json.dump(cfg, open(os.path.join(d, "config.json"), "w"), indent=4)
    save_safetensors(os.path.join(d, "model.safetensors"), W, {"format": "pt"})
    feats = {**inputs, **outputs}
    pre = {"name": "policy_preprocessor", "steps": [
        {"registry_name": "rename_observations_processor", "config": {"rename_map": {}}},
        {"registry_name": "to_batch_processor", "config": {}},
        {"registry_name": "smolvla_new_line_processor", "config": {}},
        {"registry_name": "tokenizer_processor", "config": {"max_length": L, "task_key": "task", "padding_side": "right",
                                                           "padding": "max_length", "truncation": True,
                                                           "tokenizer_name": "HuggingFaceTB/SmolVLM2-500M-Video-Instruct"}},
        {"registry_name": "device_processor", "config": {"device": "cpu", "float_dtype": None}},
        {"registry_name": "normalizer_processor", "config": {"eps": 1e-08, "features": feats, "norm_map": norm_map},
         "state_file": "policy_preprocessor_step_5_normalizer_processor.safetensors"}]}
    post = {"name": "policy_postprocessor", "steps": [
        {"registry_name": "unnormalizer_processor", "config": {"eps": 1e-08, "features": outputs, "norm_map": norm_map},
         "state_file": "policy_postprocessor_step_0_unnormalizer_processor.safetensors"},
        {"registry_name": "device_processor", "config": {"device": "cpu", "float_dtype": None}}]}
    json.dump(pre, open(os.path.join(d, "policy_preprocessor.json"), "w"), indent=2)
    json.dump(post, open(os.path.join(d, "policy_postprocessor.json"), "w"), indent=2)
    save_safetensors(os.path.join(d, pre["steps"][5]["state_file"]), STATS)
    save_safetensors(os.path.join(d, post["steps"][0]["state_file"]), {k: v for k, v in STATS.items() if k.startswith("action.")})

    g = torch.Generator().manual_seed(1)
    images = torch.rand(B, 3, IMG, IMG, generator=g)
    tokens = torch.tensor([[5, 17, 33, 9, 0, 0], [2, 40, 61, 12, 7, 1]])
    state = torch.randn(B, SDIM, generator=g)
    actions = torch.randn(B, CHUNK, ADIM, generator=g)
    noise = torch.randn(B, CHUNK, PAD, generator=g)
    time = torch.tensor([0.31, 0.87])
    snoise = torch.randn(B, CHUNK, PAD, generator=g)
    with torch.no_grad():
        l = loss([images], tokens, state, actions, noise, time)
        a = sample([images], tokens, state, snoise)
    save_safetensors(os.path.join(HERE, "parity.safetensors"), {
        "images": images.permute(0, 2, 3, 1).contiguous(), "tokens": tokens.float(), "state": state, "actions": actions,
        "noise": noise, "time": time, "loss": l.reshape(1), "sample_noise": snoise, "sampled_actions": a})
    print("loss", l.item(), "sampled[0,0]", a[0, 0].tolist())


if __name__ == "__main__":
    main()
