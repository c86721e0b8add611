#!/usr/bin/env python3
"""Checks a LeRobot pi05 policy directory with the standard library only (json, struct), from
LeRobot's code rather than reel's: the tensor names and shapes PI05Pytorch's module tree has
(huggingface/lerobot src/lerobot/policies/pi05/modeling_pi05.py: PaliGemmaWithExpertModel with
use_adarms [False, True] — the expert's RMSNorms are PiGemmaRMSNorm(cond_dim=width) of
src/lerobot/policies/pi_gemma.py, holding dense.weight [3·width, width] and dense.bias, no weight —;
action_in_proj, action_out_proj, time_mlp_in, time_mlp_out, no state_proj), the PI05Config keys of
configuration_pi05.py, and the processor pipelines as
DataProcessorPipeline.save_pretrained writes them (src/lerobot/processor/pipeline.py: name, steps
with registry_name, config and state_file "<pipeline>_step_<i>_<registry_name>.safetensors"; the
normalizer's state "<feature>.<stat>") in make_pi05_pre_post_processors' order (processor_pi05.py).

Usage: check_pi05_export.py DIR [SIZES]   SIZES: vh,vmlp,vlayers,patch,d,mlp,layers,hd,kv,vocab,e,emlp
(default: the tiny fixture's 72,32,1,8,32,64,2,4,1,320,16,32). Prints "ok" or the problems, one a line.
"""
import json
import os
import struct
import sys

PI05_CONFIG_KEYS = [  # PI05Config's fields (configuration_pi05.py) and PreTrainedConfig's "type"
    "type", "paligemma_variant", "action_expert_variant", "dtype", "n_obs_steps", "chunk_size", "n_action_steps",
    "max_state_dim", "max_action_dim", "num_inference_steps", "time_sampling_beta_alpha", "time_sampling_beta_beta",
    "time_sampling_scale", "time_sampling_offset", "min_period", "max_period", "image_resolution", "empty_cameras",
    "normalization_mapping", "input_features", "output_features", "freeze_vision_encoder", "train_expert_only",
    "tokenizer_max_length", "use_visual_memory", "use_proprioceptive_memory"]
PRE_STEPS = ["rename_observations_processor", "to_batch_processor", "relative_actions_processor", "normalizer_processor",
             "pi05_prepare_state_tokenizer_processor_step", "tokenizer_processor", "device_processor"]
POST_STEPS = ["unnormalizer_processor", "absolute_actions_processor", "device_processor"]
STATS = {"MEAN_STD": ("mean", "std"), "MIN_MAX": ("min", "max"), "QUANTILES": ("q01", "q99")}


def header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
        size = os.fstat(f.fileno()).st_size
    h.pop("__metadata__", None)
    end = max((v["data_offsets"][1] for v in h.values()), default=0)
    if 8 + n + end != size:
        raise ValueError(f"{path}: {size} bytes, the header describes {8 + n + end}")
    return h


def expected(vh, vmlp, vlayers, patch, d, mlp, layers, hd, kv, vocab, e, emlp, npos, pad=32, heads=8):
    t = {}
    pg = "model.paligemma_with_expert.paligemma."
    vt = pg + "model.vision_tower.vision_model."
    t[vt + "embeddings.patch_embedding.weight"] = [vh, 3, patch, patch]
    t[vt + "embeddings.patch_embedding.bias"] = [vh]
    t[vt + "embeddings.position_embedding.weight"] = [npos, vh]
    for i in range(vlayers):
        p = vt + f"encoder.layers.{i}."
        for n in ("layer_norm1", "layer_norm2"):
            t[p + n + ".weight"] = [vh]
            t[p + n + ".bias"] = [vh]
        for n in ("q_proj", "k_proj", "v_proj", "out_proj"):
            t[p + "self_attn." + n + ".weight"] = [vh, vh]
            t[p + "self_attn." + n + ".bias"] = [vh]
        t[p + "mlp.fc1.weight"], t[p + "mlp.fc1.bias"] = [vmlp, vh], [vmlp]
        t[p + "mlp.fc2.weight"], t[p + "mlp.fc2.bias"] = [vh, vmlp], [vh]
    t[vt + "post_layernorm.weight"] = [vh]
    t[vt + "post_layernorm.bias"] = [vh]
    t[pg + "model.multi_modal_projector.linear.weight"] = [d, vh]
    t[pg + "model.multi_modal_projector.linear.bias"] = [d]
    t[pg + "model.language_model.embed_tokens.weight"] = [vocab, d]
    t[pg + "lm_head.weight"] = [vocab, d]

    def norm(name, w, adaptive):
        if adaptive:
            t[name + ".dense.weight"], t[name + ".dense.bias"] = [3 * w, w], [3 * w]
        else:
            t[name + ".weight"] = [w]

    def gemma(prefix, w, m, adaptive):
        for i in range(layers):
            p = prefix + f"layers.{i}."
            norm(p + "input_layernorm", w, adaptive)
            norm(p + "post_attention_layernorm", w, adaptive)
            t[p + "self_attn.q_proj.weight"] = [heads * hd, w]
            t[p + "self_attn.k_proj.weight"] = [kv * hd, w]
            t[p + "self_attn.v_proj.weight"] = [kv * hd, w]
            t[p + "self_attn.o_proj.weight"] = [w, heads * hd]
            t[p + "mlp.gate_proj.weight"] = [m, w]
            t[p + "mlp.up_proj.weight"] = [m, w]
            t[p + "mlp.down_proj.weight"] = [w, m]
        norm(prefix + "norm", w, adaptive)

    gemma(pg + "model.language_model.", d, mlp, False)
    ex = "model.paligemma_with_expert.gemma_expert."
    gemma(ex + "model.", e, emlp, True)
    t[ex + "lm_head.weight"] = [vocab, e]
    for n, (o, i) in {"action_in_proj": (e, pad), "action_out_proj": (pad, e), "time_mlp_in": (e, e),
                      "time_mlp_out": (e, e)}.items():
        t["model." + n + ".weight"], t["model." + n + ".bias"] = [o, i], [o]
    return t


def check(d, sizes):
    bad = []
    cfg = json.load(open(os.path.join(d, "config.json")))
    for k in PI05_CONFIG_KEYS:
        if k not in cfg:
            bad.append(f"config.json: no {k}")
    if cfg.get("type") != "pi05":
        bad.append(f"config.json: type {cfg.get('type')!r}")
    if not 1 <= cfg.get("n_action_steps", 0) <= cfg.get("chunk_size", 0):
        bad.append("config.json: n_action_steps must be in [1, chunk_size]")
    res = cfg.get("image_resolution", [0, 0])
    vh, vmlp, vlayers, patch, dd, mlp, layers, hd, kv, vocab, e, emlp = sizes
    npos = (res[0] // patch) ** 2
    want = expected(vh, vmlp, vlayers, patch, dd, mlp, layers, hd, kv, vocab, e, emlp, npos)
    h = header(os.path.join(d, "model.safetensors"))
    # The PaliGemma's lm_head is tied to embed_tokens: safetensors' save_model keeps one of the two
    # names and PI05Policy._fix_pytorch_state_dict_keys restores embed_tokens from lm_head.
    pg = "model.paligemma_with_expert.paligemma."
    tied = (pg + "lm_head.weight", pg + "model.language_model.embed_tokens.weight")
    for k, s in want.items():
        if k in tied and any(t in h for t in tied) and k not in h:
            continue
        if k not in h:
            bad.append(f"model.safetensors: missing {k}")
        elif h[k]["shape"] != s:
            bad.append(f"model.safetensors: {k} has shape {h[k]['shape']}, the module {s}")
        elif h[k]["dtype"] != ("F32" if cfg.get("dtype") == "float32" else h[k]["dtype"]):
            bad.append(f"model.safetensors: {k} is {h[k]['dtype']}, config dtype {cfg.get('dtype')}")
    for k in h:
        if k not in want:
            bad.append(f"model.safetensors: unexpected {k}")
    feats = {**cfg["input_features"], **cfg["output_features"]}
    nm = cfg["normalization_mapping"]
    for fname, name, steps, keyed in (("policy_preprocessor.json", "policy_preprocessor", PRE_STEPS, feats),
                                      ("policy_postprocessor.json", "policy_postprocessor", POST_STEPS, cfg["output_features"])):
        p = json.load(open(os.path.join(d, fname)))
        if p.get("name") != name:
            bad.append(f"{fname}: name {p.get('name')!r}")
        got = [s.get("registry_name") for s in p.get("steps", [])]
        if got != steps:
            bad.append(f"{fname}: steps {got}, make_pi05_pre_post_processors makes {steps}")
            continue
        for i, s in enumerate(p["steps"]):
            if "config" not in s:
                bad.append(f"{fname}: step {i} has no config")
            sf = f"{name}_step_{i}_{s['registry_name']}.safetensors"
            if s["registry_name"] in ("normalizer_processor", "unnormalizer_processor"):
                if s.get("state_file") != sf:
                    bad.append(f"{fname}: step {i} state_file {s.get('state_file')!r}, want {sf}")
                    continue
                sh = header(os.path.join(d, sf))
                for key, f in keyed.items():
                    mode = nm.get(f["type"], "IDENTITY")
                    if mode == "IDENTITY":
                        continue
                    for st in STATS[mode]:
                        k = f"{key}.{st}"
                        if k not in sh or sh[k]["shape"] != f["shape"]:
                            bad.append(f"{sf}: {k} missing or not of shape {f['shape']}")
                if s["config"].get("features") != keyed or s["config"].get("norm_map") != nm:
                    bad.append(f"{fname}: step {i} features/norm_map differ from config.json")
            elif "state_file" in s:
                bad.append(f"{fname}: stateless step {s['registry_name']} has a state_file")
    return bad


if __name__ == "__main__":
    sizes = [72, 32, 1, 8, 32, 64, 2, 4, 1, 320, 16, 32]
    if len(sys.argv) > 2:
        sizes = [int(x) for x in sys.argv[2].split(",")]
    problems = check(sys.argv[1], sizes)
    print("\n".join(problems) if problems else "ok")
    sys.exit(1 if problems else 0)
