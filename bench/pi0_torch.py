#!/usr/bin/env python3
"""Latency of one pi0 action chunk in PyTorch, for `reel bench finetune --model pi0 --latency --torch`.

The network is the independent PyTorch twin of LeRobot's pi0 in
tasks/testdata/lerobot_pi0/gen_pi0_twin.py (written from huggingface/lerobot
src/lerobot/policies/pi0/modeling_pi0.py: sample_actions with the prefix's keys and values cached
over the Euler steps), resized here to pi0's real widths (openpi pi0_config.py: PaliGemma-3B's
SigLIP So400m/14 at 224 px and Gemma-2B, the gemma_300m expert) at the depth given, random
weights. No transformers or lerobot import: torch 1.13 (Debian python3-torch).

Usage: pi0_torch.py TWIN_PATH LAYERS VISION_LAYERS CAMERAS TOKENS HORIZON STEPS
Prints {"ready": true, "params": N} once the weights are made, then for every line read on stdin
runs one chunk (batch 1) and prints {"chunk_s": seconds}. Threads: $REEL_TORCH_THREADS if set.
"""
import importlib.util
import json
import os
import sys
import time

import torch

twin_path, layers, vlayers, cams, ntok, horizon, steps = sys.argv[1], *map(int, sys.argv[2:8])
if os.environ.get("REEL_TORCH_THREADS"):
    torch.set_num_threads(int(os.environ["REEL_TORCH_THREADS"]))
spec = importlib.util.spec_from_file_location("pi0_twin", twin_path)
t = importlib.util.module_from_spec(spec)
spec.loader.exec_module(t)  # builds the twin's tiny weights; replaced below

# pi0's real widths (the twin keeps LeRobot's 8 query heads and SigLIP heads 72 wide).
t.IMG, t.PATCH, t.VH, t.VMLP, t.VLAYERS = 224, 14, 1152, 4304, vlayers
t.D, t.HEADS, t.HD, t.KV, t.MLP, t.LAYERS, t.VOCAB = 2048, 8, 256, 1, 16384, layers, 1024
t.E, t.EMLP, t.CHUNK, t.STEPS, t.SDIM, t.ADIM = 1024, 4096, horizon, steps, 8, 8
torch.manual_seed(0)
W, rnd, vt, pg, ex = t.W, t.rnd, t.vt, t.pg, t.ex
W.clear()
VH, VMLP, P = t.VH, t.VMLP, t.PATCH
W[vt + "embeddings.patch_embedding.weight"] = rnd(VH, 3, P, P, s=0.02)
W[vt + "embeddings.patch_embedding.bias"] = rnd(VH, s=0.02)
W[vt + "embeddings.position_embedding.weight"] = rnd((t.IMG // P) ** 2, VH, s=0.02)
for i in range(vlayers):
    p = vt + f"encoder.layers.{i}."
    for n in ("layer_norm1", "layer_norm2"):
        W[p + n + ".weight"], W[p + n + ".bias"] = 1 + rnd(VH, s=0.02), rnd(VH, s=0.02)
    for n in ("q_proj", "k_proj", "v_proj", "out_proj"):
        W[p + "self_attn." + n + ".weight"], W[p + "self_attn." + n + ".bias"] = rnd(VH, VH, s=0.02), rnd(VH, s=0.02)
    W[p + "mlp.fc1.weight"], W[p + "mlp.fc1.bias"] = rnd(VMLP, VH, s=0.02), rnd(VMLP, s=0.02)
    W[p + "mlp.fc2.weight"], W[p + "mlp.fc2.bias"] = rnd(VH, VMLP, s=0.02), rnd(VH, s=0.02)
W[vt + "post_layernorm.weight"], W[vt + "post_layernorm.bias"] = 1 + rnd(VH, s=0.02), rnd(VH, s=0.02)
W[pg + "model.multi_modal_projector.linear.weight"] = rnd(t.D, VH, s=0.02)
W[pg + "model.multi_modal_projector.linear.bias"] = rnd(t.D, s=0.02)
W[pg + "model.language_model.embed_tokens.weight"] = rnd(t.VOCAB, t.D, s=0.02)
t.gemma_layers(pg + "model.language_model.", t.D, t.MLP)
t.gemma_layers(ex + "model.", t.E, t.EMLP)
E, PAD = t.E, t.PAD
for n, (o, i) in {"action_in_proj": (E, PAD), "action_out_proj": (PAD, E), "state_proj": (E, PAD),
                  "action_time_mlp_in": (E, 2 * E), "action_time_mlp_out": (E, E)}.items():
    W["model." + n + ".weight"], W["model." + n + ".bias"] = rnd(o, i, s=0.02), rnd(o, s=0.02)
t.STATS = {"observation.state.mean": torch.zeros(8), "observation.state.std": torch.ones(8),
           "action.mean": torch.zeros(8), "action.std": torch.ones(8)}
for k in W:
    W[k] = W[k].contiguous()

images = [torch.rand(1, 3, t.IMG, t.IMG) for _ in range(cams)]
tokens = torch.randint(1, t.VOCAB, (1, ntok))
state, noise = torch.randn(1, 8), torch.randn(1, horizon, PAD)
print(json.dumps({"ready": True, "params": sum(v.numel() for v in W.values()), "torch": torch.__version__,
                  "threads": torch.get_num_threads()}), flush=True)
with torch.no_grad():
    for _ in sys.stdin:
        t0 = time.perf_counter()
        t.sample(images, tokens, state, noise)
        print(json.dumps({"chunk_s": time.perf_counter() - t0}), flush=True)
