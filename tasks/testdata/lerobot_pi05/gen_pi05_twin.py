#!/usr/bin/env python3
"""An independent PyTorch twin of LeRobot's pi0.5 and the tiny LeRobot-layout pi05 directory it checks.

Written from huggingface/lerobot src/lerobot/policies/pi05/modeling_pi05.py (PI05Pytorch.embed_prefix,
embed_suffix — time_mlp_in/out with swish, no state token, att_masks [1, 0, ...] —, forward,
sample_actions, denoise_step; compute_layer_complete with adarms_cond [None, cond]),
src/lerobot/policies/pi_gemma.py (PiGemmaRMSNorm: without a condition x·rsqrt(mean x²+eps)·(1+w); with
one [scale, shift, gate] = dense(cond), x·rsqrt(mean x²+eps)·(1+scale)+shift, and _gated_residual
x + y·gate), src/lerobot/policies/pi05/processor_pi05.py (Pi05PrepareStateTokenizerProcessorStep:
np.digitize(state, np.linspace(-1, 1, 257)[:-1]) - 1, "Task: {task}, State: {bins};\\nAction: "),
src/lerobot/policies/common/{vla_utils.py,flow_matching.py} and
src/lerobot/processor/normalize_processor.py (QUANTILES: 2(x − q01)/(q99 − q01) − 1, its inverse),
with the PaliGemma pieces from transformers src/transformers/models/{siglip,gemma,paligemma}/
modeling_*.py (SigLIP with post_layernorm, the projector, Gemma's √D-scaled embeddings, rotate-half
RoPE θ=1e4, gelu-tanh MLP, eager attention in float32 with openpi's mask value). No transformers or
lerobot import: torch 1.13 and numpy (Debian python3-torch, python3-numpy) and the standard library.

Run: /usr/bin/python3 gen_pi05_twin.py   (writes tiny/ and parity.safetensors here)

LeRobot's PI05Config sizes the networks by variant, so tiny/ is LeRobot's *layout* (names, config
keys, processor files) at sizes only reel's shape-reading loader opens; LeRobot's conventions kept:
8 attention heads, SigLIP heads 72 wide, state/action padded to 32.
"""
import json
import math
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(0)

IMG, PATCH, VH, VMLP, VLAYERS = 32, 8, 72, 32, 1  # SigLIP: 72 wide, 1 head of 72
# The Gemma's vocabulary holds reel's word vocabulary of pi0.5 prompts, so the directory also serves.
D, HEADS, HD, KV, MLP, LAYERS, VOCAB = 32, 8, 4, 1, 64, 2, 320
E, EMLP = 16, 32  # the action expert (gemma_300m's role)
PAD = 32  # max_state_dim, max_action_dim
CHUNK, NSTEPS, STEPS = 5, 3, 10
SDIM, ADIM = 6, 6
B, L = 2, 24
MASK_VALUE = -2.3819763e38  # lerobot.utils.constants.OPENPI_ATTENTION_MASK_VALUE


def rnd(*shape, s=0.2):
    return torch.randn(*shape) * s


# ---- weights under LeRobot's module names (PI05Policy.model = PI05Pytorch) ----
W = {}
pg = "model.paligemma_with_expert.paligemma."
vt = pg + "model.vision_tower.vision_model."
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
W[pg + "model.multi_modal_projector.linear.weight"] = rnd(D, VH, s=0.12)
W[pg + "model.multi_modal_projector.linear.bias"] = rnd(D, s=0.05)
W[pg + "model.language_model.embed_tokens.weight"] = rnd(VOCAB, D, s=0.2)


def norm_params(name, width, adaptive):
    if adaptive:  # PiGemmaRMSNorm(cond_dim=E): dense Linear(E, 3·width); random here (LeRobot zeroes the weight at init)
        W[name + ".dense.weight"] = rnd(3 * width, E, s=0.2)
        W[name + ".dense.bias"] = rnd(3 * width, s=0.1)
    else:
        W[name + ".weight"] = rnd(width, s=0.2)


def gemma_layers(prefix, width, mlp, adaptive):
    for i in range(LAYERS):
        p = prefix + f"layers.{i}."
        norm_params(p + "input_layernorm", width, adaptive)
        norm_params(p + "post_attention_layernorm", width, adaptive)
        W[p + "self_attn.q_proj.weight"] = rnd(HEADS * HD, width, s=0.2)
        W[p + "self_attn.k_proj.weight"] = rnd(KV * HD, width, s=0.2)
        W[p + "self_attn.v_proj.weight"] = rnd(KV * HD, width, s=0.2)
        W[p + "self_attn.o_proj.weight"] = rnd(width, HEADS * HD, s=0.2)
        W[p + "mlp.gate_proj.weight"] = rnd(mlp, width, s=0.2)
        W[p + "mlp.up_proj.weight"] = rnd(mlp, width, s=0.2)
        W[p + "mlp.down_proj.weight"] = rnd(width, mlp, s=0.2)
    norm_params(prefix + "norm", width, adaptive)


gemma_layers(pg + "model.language_model.", D, MLP, False)  # use_adarms [False, True]
ex = "model.paligemma_with_expert.gemma_expert."
gemma_layers(ex + "model.", E, EMLP, True)
W[ex + "lm_head.weight"] = rnd(VOCAB, E, s=0.1)  # PiGemmaForCausalLM's head: saved, never run
for n, (o, i) in {"action_in_proj": (E, PAD), "action_out_proj": (PAD, E), "time_mlp_in": (E, E), "time_mlp_out": (E, E)}.items():
    W["model." + n + ".weight"] = rnd(o, i, s=0.25)
    W["model." + n + ".bias"] = rnd(o, s=0.1)

# ---- normalisation statistics (QUANTILES for STATE and ACTION, PI05Config's default) ----
q01s, q01a = rnd(SDIM, s=1.0), rnd(ADIM, s=1.0)
STATS = {
    "observation.state.q01": q01s, "observation.state.q99": q01s + 0.5 + 2 * torch.rand(SDIM),
    "action.q01": q01a, "action.q99": q01a + 0.5 + 2 * torch.rand(ADIM),
}


# ---- the twin ----
def linear(x, name):
    return F.linear(x, W[name + ".weight"], W.get(name + ".bias"))


def siglip(px):  # [B, 3, S, S] in [-1, 1] -> last_hidden_state [B, N, VH]
    x = F.conv2d(px, W[vt + "embeddings.patch_embedding.weight"], W[vt + "embeddings.patch_embedding.bias"], stride=PATCH)
    x = x.flatten(2).transpose(1, 2) + W[vt + "embeddings.position_embedding.weight"][None]
    nh = VH // 72
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


def layernorm(name, x, cond):
    """layernorm_forward: PiGemmaRMSNorm.forward -> (normed, gate)."""
    var = torch.mean(torch.square(x.float()), dim=-1, keepdim=True)
    normed = x * torch.rsqrt(var + 1e-6)
    if cond is None:
        return normed * (1.0 + W[name + ".weight"].float()), None
    mod = linear(cond, name + ".dense")[:, None]  # [B, 1, 3·width]
    scale, shift, gate = torch.chunk(mod, 3, dim=-1)
    return normed * (1 + scale.float()) + shift.float(), gate


def gated_residual(x, y, gate):
    return x + y if gate is None else x + y * gate


def rope(x, pos):  # x [B, H, T, hd], pos [B, T]; transformers' Gemma rotary (rotate_half)
    inv = 1.0 / (10000 ** (torch.arange(0, HD, 2, dtype=torch.int64).float() / HD))
    f = pos[:, :, None].float() * inv[None, None, :]
    emb = torch.cat([f, f], dim=-1)
    cos, sin = emb.cos()[:, None], emb.sin()[:, None]
    x1, x2 = x[..., : HD // 2], x[..., HD // 2:]
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


def joint(streams, mask2d, pos, past=None):
    """compute_layer_complete over the layers: streams [(prefix, x, cond)], one attention over all."""
    kvs = []
    for i in range(LAYERS):
        qs, ks, vs, gates = [], [], [], []
        for pre, x, cond in streams:
            p = pre + f"layers.{i}."
            h, g = layernorm(p + "input_layernorm", x, cond)
            gates.append(g)
            b, t, _ = h.shape
            qs.append(linear(h, p + "self_attn.q_proj").view(b, t, -1, HD).transpose(1, 2))
            ks.append(linear(h, p + "self_attn.k_proj").view(b, t, -1, HD).transpose(1, 2))
            vs.append(linear(h, p + "self_attn.v_proj").view(b, t, -1, HD).transpose(1, 2))
        q, k, v = torch.cat(qs, 2), torch.cat(ks, 2), torch.cat(vs, 2)
        q, k = rope(q, pos), rope(k, pos)
        if past is not None:
            k, v = torch.cat([past[i][0], k], 2), torch.cat([past[i][1], v], 2)
        kvs.append((k, v))
        k, v = k.repeat_interleave(HEADS // KV, 1), v.repeat_interleave(HEADS // KV, 1)
        s = (q @ k.transpose(2, 3)) * HD ** -0.5 + torch.where(mask2d[:, None], 0.0, MASK_VALUE)
        a = torch.softmax(s, dim=-1, dtype=torch.float32) @ v
        a = a.transpose(1, 2).reshape(a.shape[0], -1, 1 * 8 * HD)
        out, off = [], 0
        for j, (pre, x, cond) in enumerate(streams):
            p = pre + f"layers.{i}."
            t = x.shape[1]
            x = gated_residual(x, linear(a[:, off:off + t], p + "self_attn.o_proj"), gates[j])
            off += t
            h, g = layernorm(p + "post_attention_layernorm", x, cond)
            h = linear(F.gelu(linear(h, p + "mlp.gate_proj"), approximate="tanh") * linear(h, p + "mlp.up_proj"), p + "mlp.down_proj")
            out.append((pre, gated_residual(x, h, g), cond))
        streams = out
    return [layernorm(pre + "norm", x, cond)[0] for pre, x, cond in streams], kvs


def att_2d(pad, att):  # make_att_2d_masks
    c = torch.cumsum(att, dim=1)
    return (c[:, None, :] <= c[:, :, None]) & (pad[:, None, :] & pad[:, :, None])


def embed_prefix(images, tokens):
    embs, pads, att = [], [], []
    for img in images:  # [B, 3, S, S] in [0, 1]
        e = linear(siglip(img * 2.0 - 1.0), pg + "model.multi_modal_projector.linear")
        embs.append(e)
        pads.append(torch.ones(e.shape[:2], dtype=torch.bool))
        att += [0] * e.shape[1]
    lang = W[pg + "model.language_model.embed_tokens.weight"][tokens] * torch.tensor(D ** 0.5)
    embs.append(lang)
    pads.append(tokens != 0)
    att += [0] * tokens.shape[1]
    return torch.cat(embs, 1), torch.cat(pads, 1), torch.tensor(att)[None].expand(tokens.shape[0], -1)


def sincos(t, dim, lo=4e-3, hi=4.0):  # create_sinusoidal_pos_embedding
    frac = torch.linspace(0.0, 1.0, dim // 2, dtype=torch.float64)
    period = lo * (hi / lo) ** frac
    x = t[:, None] * (1.0 / period * 2 * math.pi)[None]
    return torch.cat([torch.sin(x), torch.cos(x)], -1).type(t.dtype)


def embed_suffix(xt, t):
    act = linear(xt, "model.action_in_proj")
    cond = F.silu(linear(F.silu(linear(sincos(t, E), "model.time_mlp_in")), "model.time_mlp_out"))
    b = xt.shape[0]
    att = torch.tensor([1] + [0] * (CHUNK - 1))[None].expand(b, -1)
    return act, torch.ones(b, CHUNK, dtype=torch.bool), att, cond


def pad(x):
    return F.pad(x, (0, PAD - x.shape[-1]))


def normalize(x, key):
    denom = STATS[key + ".q99"] - STATS[key + ".q01"]
    return 2.0 * (x - STATS[key + ".q01"]) / denom - 1.0


def unnormalize(x, key):
    return (x + 1.0) * (STATS[key + ".q99"] - STATS[key + ".q01"]) / 2.0 + STATS[key + ".q01"]


def prompt(task, state):  # Pi05PrepareStateTokenizerProcessorStep on the normalised state
    bins = np.digitize(state.numpy(), bins=np.linspace(-1, 1, 256 + 1)[:-1]) - 1
    cleaned = task.strip().replace("_", " ").replace("\n", " ")
    return f"Task: {cleaned}, State: {' '.join(map(str, bins))};\nAction: "


def loss(images, tokens, actions, noise, time):  # PI05Policy.forward, reduction mean
    a = pad(normalize(actions, "action"))
    te = time[:, None, None]
    xt, u = te * noise + (1 - te) * a, noise - a
    pe, pp, pa = embed_prefix(images, tokens)
    se, sp, sa, cond = embed_suffix(xt, time)
    padm, attm = torch.cat([pp, sp], 1), torch.cat([pa, sa], 1)
    pos = torch.cumsum(padm, dim=1) - 1
    (_, so), _ = joint([(pg + "model.language_model.", pe, None), (ex + "model.", se, cond)], att_2d(padm, attm), pos)
    v = linear(so[:, -CHUNK:], "model.action_out_proj")
    return F.mse_loss(u, v, reduction="none")[:, :, :ADIM].mean()


def sample(images, tokens, noise):  # predict_action_chunk, then the postprocessor's unnormalize
    pe, pp, pa = embed_prefix(images, tokens)
    ppos = torch.cumsum(pp, dim=1) - 1
    _, kv = joint([(pg + "model.language_model.", pe, None)], att_2d(pp, pa), ppos)
    x, dt = noise, -1.0 / STEPS
    for step in range(STEPS):
        t = torch.tensor(1.0 + step * dt, dtype=torch.float32).expand(noise.shape[0])
        se, sp, sa, cond = embed_suffix(x, t)
        m = torch.cat([pp[:, None, :].expand(-1, sp.shape[1], -1), att_2d(sp, sa)], 2)
        pos = torch.sum(pp, -1)[:, None] + torch.cumsum(sp, dim=1) - 1
        (so,), _ = joint([(ex + "model.", se, cond)], m, pos, past=kv)
        x = x + dt * linear(so[:, -CHUNK:], "model.action_out_proj")
    return unnormalize(x[:, :, :ADIM], "action")


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
    norm_map = {"VISUAL": "IDENTITY", "STATE": "QUANTILES", "ACTION": "QUANTILES"}
    cfg = {"type": "pi05", "n_obs_steps": 1, "input_features": inputs, "output_features": outputs,
           "device": "cpu", "use_amp": False, "push_to_hub": False, "repo_id": None, "private": None, "tags": None,
           "license": None, "pretrained_path": None, "paligemma_variant": "gemma_2b",
           "action_expert_variant": "gemma_300m", "dtype": "float32", "chunk_size": CHUNK, "n_action_steps": NSTEPS,
           "use_visual_memory": False, "use_proprioceptive_memory": False,
           "max_state_dim": PAD, "max_action_dim": PAD, "num_inference_steps": STEPS,
           "time_sampling_beta_alpha": 1.5, "time_sampling_beta_beta": 1.0, "time_sampling_scale": 0.999,
           "time_sampling_offset": 0.001, "min_period": 0.004, "max_period": 4.0, "use_relative_actions": False,
           "image_resolution": [IMG, IMG], "empty_cameras": 0, "tokenizer_max_length": L,
           "normalization_mapping": norm_map, "gradient_checkpointing": False,
           "compile_model": False, "compile_mode": "max-autotune", "freeze_vision_encoder": False,
           "train_expert_only": False, "optimizer_lr": 2.5e-05, "optimizer_betas": [0.9, 0.95], "optimizer_eps": 1e-08,
           "optimizer_weight_decay": 0.01, "optimizer_grad_clip_norm": 1.0, "scheduler_warmup_steps": 1000,
           "scheduler_decay_steps": 30000, "scheduler_decay_lr": 2.5e-06}
    json.dump(cfg, open(os.path.join(d, "config.json"), "w"), indent=4)
    save_safetensors(os.path.join(d, "model.safetensors"), W, {"format": "pt"})
    feats = {**inputs, **outputs}
    # make_pi05_pre_post_processors: rename, batch, relative, normalize, pi05 state prompt, tokenizer, device
    pre = {"name": "policy_preprocessor", "steps": [
        {"registry_name": "rename_observations_processor", "config": {"rename_map": {}}},
        {"registry_name": "to_batch_processor", "config": {}},
        {"registry_name": "relative_actions_processor", "config": {"enabled": False, "exclude_joints": ["gripper"], "action_names": None}},
        {"registry_name": "normalizer_processor", "config": {"eps": 1e-08, "features": feats, "norm_map": norm_map},
         "state_file": "policy_preprocessor_step_3_normalizer_processor.safetensors"},
        {"registry_name": "pi05_prepare_state_tokenizer_processor_step", "config": {"max_state_dim": PAD, "include_state_in_prompt": True}},
        {"registry_name": "tokenizer_processor", "config": {"max_length": L, "task_key": "task", "padding_side": "right",
                                                           "padding": "max_length", "truncation": True,
                                                           "tokenizer_name": "google/paligemma-3b-pt-224"}},
        {"registry_name": "device_processor", "config": {"device": "cpu", "float_dtype": None}}]}
    post = {"name": "policy_postprocessor", "steps": [
        {"registry_name": "unnormalizer_processor", "config": {"eps": 1e-08, "features": outputs, "norm_map": norm_map},
         "state_file": "policy_postprocessor_step_0_unnormalizer_processor.safetensors"},
        {"registry_name": "absolute_actions_processor", "config": {"enabled": False}},
        {"registry_name": "device_processor", "config": {"device": "cpu", "float_dtype": None}}]}
    json.dump(pre, open(os.path.join(d, "policy_preprocessor.json"), "w"), indent=2)
    json.dump(post, open(os.path.join(d, "policy_postprocessor.json"), "w"), indent=2)
    save_safetensors(os.path.join(d, pre["steps"][3]["state_file"]), STATS)
    save_safetensors(os.path.join(d, post["steps"][0]["state_file"]), {k: v for k, v in STATS.items() if k.startswith("action.")})

    g = torch.Generator().manual_seed(1)
    images = torch.rand(B, 3, IMG, IMG, generator=g)
    # Token ids stand for the PaliGemma tokenizer's ids of the prompts (not in this repository).
    tokens = torch.zeros(B, L, dtype=torch.int64)
    tokens[0, :9] = torch.tensor([5, 17, 33, 9, 300, 301, 302, 12, 7])
    tokens[1, :14] = torch.tensor([2, 40, 61, 12, 7, 1, 250, 251, 100, 319, 44, 45, 46, 3])
    state = (STATS["observation.state.q01"] + torch.rand(B, SDIM, generator=g) * 1.2
             * (STATS["observation.state.q99"] - STATS["observation.state.q01"]) - 0.1)
    actions = torch.randn(B, CHUNK, ADIM, generator=g)
    noise = torch.randn(B, CHUNK, PAD, generator=g)
    time = torch.tensor([0.31, 0.87])
    snoise = torch.randn(B, CHUNK, PAD, generator=g)
    tasks = ["pick up the red_circle\n", "  push the blue square to the edge"]
    with torch.no_grad():
        l = loss([images], tokens, actions, noise, time)
        a = sample([images], tokens, snoise)
        prompts = [prompt(tasks[i], normalize(state[i], "observation.state")) for i in range(B)]
    meta = {f"task_{i}": tasks[i] for i in range(B)}
    meta.update({f"prompt_{i}": prompts[i] for i in range(B)})
    save_safetensors(os.path.join(HERE, "parity.safetensors"), {
        "images": images.permute(0, 2, 3, 1).contiguous(), "tokens": tokens.float(), "state": state, "actions": actions,
        "noise": noise, "time": time, "loss": l.reshape(1), "sample_noise": snoise, "sampled_actions": a}, meta)
    print("loss", l.item(), "sampled[0,0]", a[0, 0].tolist())
    print(prompts)


if __name__ == "__main__":
    main()
