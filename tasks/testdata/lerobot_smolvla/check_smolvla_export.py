#!/usr/bin/env python3
"""An independent reader of a LeRobot smolvla policy directory (what `reel export --format lerobot` writes
for a smolvla run), standard library only, written from huggingface/lerobot:

- src/lerobot/policies/smolvla/configuration_smolvla.py (SmolVLAConfig's fields) and
  src/lerobot/configs/policies.py (PreTrainedConfig's): config.json holds "type": "smolvla" and no key
  draccus would refuse;
- src/lerobot/policies/smolvla/modeling_smolvla.py (VLAFlowMatching) and smolvlm_with_expert.py
  (SmolVLMWithExpertModel): the state dict's key set for the sizes — the VLM's vision_model, connector,
  text_model cut to num_vlm_layers, lm_head; the expert's layers (no embed_tokens) whose k_proj/v_proj read
  num_key_value_heads·head_dim features in cross-attention layers (attention_mode cross_attn, every layer i
  with i % self_attn_every_n_layers != 0) and the expert's width otherwise; the expert
  int(hidden·expert_width_multiplier) wide; state_proj, action_in_proj, action_out_proj, action_time_mlp_in/out
  with max_state_dim/max_action_dim 32; every tensor F32;
- src/lerobot/policies/smolvla/processor_smolvla.py (make_smolvla_pre_post_processors) and
  src/lerobot/processor/pipeline.py: both pipelines' step order and their state files
  (<pipeline>_step_<i>_<registry_name>.safetensors) with the statistics MEAN_STD needs.

Usage: check_smolvla_export.py DIR   (prints "ok" or the first problem, exit 1)
"""
import json
import os
import struct
import sys

SMOLVLA = """n_obs_steps chunk_size n_action_steps normalization_mapping max_state_dim max_action_dim
resize_imgs_with_padding empty_cameras adapt_to_pi_aloha use_delta_joint_actions_aloha tokenizer_max_length num_steps
use_cache freeze_vision_encoder train_expert_only train_state_proj optimizer_lr optimizer_betas optimizer_eps
optimizer_weight_decay optimizer_grad_clip_norm scheduler_warmup_steps scheduler_decay_steps scheduler_decay_lr
vlm_model_name load_vlm_weights add_image_special_tokens attention_mode prefix_length pad_language_to
num_expert_layers num_vlm_layers self_attn_every_n_layers expert_width_multiplier min_period max_period rtc_config
compile_model compile_mode""".split()
BASE = """n_obs_steps input_features output_features device use_amp use_peft push_to_hub repo_id private tags license
pretrained_path pretrained_revision""".split()


def header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
    h.pop("__metadata__", None)
    return h


def fail(msg):
    print(msg)
    sys.exit(1)


def main(d):
    cfg = json.load(open(os.path.join(d, "config.json")))
    if cfg.get("type") != "smolvla":
        fail(f"config.json: type {cfg.get('type')!r}")
    extra = set(cfg) - set(SMOLVLA) - set(BASE) - {"type"}
    if extra:
        fail(f"config.json: keys SmolVLAConfig does not have: {sorted(extra)}")
    h = header(os.path.join(d, "model.safetensors"))
    for k, v in h.items():
        if v["dtype"] != "F32":
            fail(f"{k}: dtype {v['dtype']}")
    vlm, ex = "model.vlm_with_expert.vlm.", "model.vlm_with_expert.lm_expert."
    shape = lambda k: h[k]["shape"] if k in h else fail(f"model.safetensors: no {k}")
    vocab, hidden = shape(vlm + "model.text_model.embed_tokens.weight")
    q_out = shape(vlm + "model.text_model.layers.0.self_attn.q_proj.weight")[0]
    kv_out = shape(vlm + "model.text_model.layers.0.self_attn.k_proj.weight")[0]
    width = int(hidden * cfg["expert_width_multiplier"])
    layers, every, cross_mode = cfg["num_vlm_layers"], cfg["self_attn_every_n_layers"], "cross" in cfg["attention_mode"]
    want = {}
    vt = vlm + "model.vision_model."
    nv = len({k.split(".")[6] for k in h if k.startswith(vt + "encoder.layers.")})
    for k in h:
        if k.startswith(vt) or k.startswith(vlm + "model.connector."):
            want[k] = h[k]["shape"]  # the tower and connector: SmolVLM2's own (sized by vlm_model_name)
    for i in range(nv):
        for n in ("q_proj", "k_proj", "v_proj", "out_proj"):
            if vt + f"encoder.layers.{i}.self_attn.{n}.weight" not in h:
                fail(f"vision layer {i}: no {n}")
    want[vlm + "model.text_model.embed_tokens.weight"] = [vocab, hidden]
    want[vlm + "model.text_model.norm.weight"] = [hidden]
    want[vlm + "lm_head.weight"] = [vocab, hidden]
    mlp = shape(vlm + "model.text_model.layers.0.mlp.gate_proj.weight")[0]
    emlp = shape(ex + "layers.0.mlp.gate_proj.weight")[0]
    for i in range(layers):
        for pre, w, m in ((vlm + f"model.text_model.layers.{i}.", hidden, mlp), (ex + f"layers.{i}.", width, emlp)):
            kin = kv_out if pre.startswith(ex) and cross_mode and not (every > 0 and i % every == 0) else w
            want.update({pre + "input_layernorm.weight": [w], pre + "post_attention_layernorm.weight": [w],
                         pre + "self_attn.q_proj.weight": [q_out, w], pre + "self_attn.k_proj.weight": [kv_out, kin],
                         pre + "self_attn.v_proj.weight": [kv_out, kin], pre + "self_attn.o_proj.weight": [w, q_out],
                         pre + "mlp.gate_proj.weight": [m, w], pre + "mlp.up_proj.weight": [m, w],
                         pre + "mlp.down_proj.weight": [w, m]})
    want[ex + "norm.weight"] = [width]
    sd, ad = cfg["max_state_dim"], cfg["max_action_dim"]
    for n, (o, i) in {"state_proj": (hidden, sd), "action_in_proj": (width, ad), "action_out_proj": (ad, width),
                      "action_time_mlp_in": (width, 2 * width), "action_time_mlp_out": (width, width)}.items():
        want[f"model.{n}.weight"], want[f"model.{n}.bias"] = [o, i], [o]
    got = {k: v["shape"] for k, v in h.items()}
    if set(got) != set(want):
        fail(f"model.safetensors: missing {sorted(set(want) - set(got))[:5]}, unexpected {sorted(set(got) - set(want))[:5]}")
    for k in want:
        if got[k] != want[k]:
            fail(f"{k}: shape {got[k]}, VLAFlowMatching has {want[k]}")
    order = {"policy_preprocessor": ["rename_observations_processor", "to_batch_processor", "smolvla_new_line_processor",
                                     "tokenizer_processor", "device_processor", "normalizer_processor"],
             "policy_postprocessor": ["unnormalizer_processor", "device_processor"]}
    for name, steps in order.items():
        p = json.load(open(os.path.join(d, name + ".json")))
        if [s["registry_name"] for s in p["steps"]] != steps:
            fail(f"{name}.json: steps {[s['registry_name'] for s in p['steps']]}, want {steps}")
        for i, s in enumerate(p["steps"]):
            if "state_file" in s:
                if s["state_file"] != f"{name}_step_{i}_{s['registry_name']}.safetensors":
                    fail(f"{name}.json: state_file {s['state_file']}")
                st = header(os.path.join(d, s["state_file"]))
                mode = cfg["normalization_mapping"]["ACTION"]
                names = {"MEAN_STD": ("mean", "std"), "MIN_MAX": ("min", "max"), "QUANTILES": ("q01", "q99")}[mode]
                keys = ["action"] + (["observation.state"] if name == "policy_preprocessor" and "observation.state" in cfg["input_features"] else [])
                for k in keys:
                    feat = (cfg["output_features"] if k == "action" else cfg["input_features"])[k]
                    for n in names:
                        if st.get(f"{k}.{n}", {}).get("shape") != feat["shape"]:
                            fail(f"{s['state_file']}: {k}.{n} missing or not of shape {feat['shape']}")
    print("ok")


if __name__ == "__main__":
    main(sys.argv[1])
