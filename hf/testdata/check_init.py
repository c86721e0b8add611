#!/usr/bin/env python3
"""Checks a directory written by `reel hf init` against the modules transformers builds for its
config.json (Python standard library only; independent of reel's Go code).

The expected tensors (name → shape) are derived here from transformers' modeling files
(huggingface/transformers src/transformers/models/<arch>/modeling_<arch>.py): LlamaForCausalLM,
Qwen2ForCausalLM, Qwen3ForCausalLM, GemmaForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM, and
PaliGemmaForConditionalGeneration (SiglipVisionModel tower saved without its vision_model level,
as transformers 5 writes it; the pooling head when vision_use_head). model.safetensors' header is
parsed with json + struct and every tensor's name, shape, dtype and data offsets checked.

Usage: check_init.py DIR   (exit status 0 and "ok N tensors" when everything matches)
"""
import json
import os
import struct
import sys

DEC = {  # model_type → (qkv bias default, o bias follows attention_bias, q/k norm, sandwich norms, tie default)
    "llama": (False, True, False, False, False),
    "qwen2": (True, False, False, False, False),
    "qwen3": (False, True, True, False, False),
    "gemma": (False, True, False, False, True),
    "gemma2": (False, True, False, True, True),
    "gemma3_text": (False, True, True, True, True),
}
HEAD_DIM_DEFAULT = {"qwen3": 128, "gemma": 256, "gemma2": 256, "gemma3_text": 256}


def decoder(c, prefix, out, lm_head):
    mt = c["model_type"]
    qkv_bias, o_follows, qk_norm, sandwich, tie = DEC[mt]
    att_bias = c.get("attention_bias", False)
    qkv_bias = qkv_bias or att_bias
    o_bias = att_bias if o_follows else False
    mlp_bias = c.get("mlp_bias", False)
    h, inter, v = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    heads = c["num_attention_heads"]
    kv = c.get("num_key_value_heads", heads)
    hd = c.get("head_dim", HEAD_DIM_DEFAULT.get(mt, h // heads))
    out[prefix + "embed_tokens.weight"] = [v, h]
    for i in range(c["num_hidden_layers"]):
        p = "%slayers.%d." % (prefix, i)
        for n, o in (("q_proj", heads * hd), ("k_proj", kv * hd), ("v_proj", kv * hd)):
            out[p + "self_attn." + n + ".weight"] = [o, h]
            if qkv_bias:
                out[p + "self_attn." + n + ".bias"] = [o]
        out[p + "self_attn.o_proj.weight"] = [h, heads * hd]
        if o_bias:
            out[p + "self_attn.o_proj.bias"] = [h]
        if qk_norm:
            out[p + "self_attn.q_norm.weight"] = [hd]
            out[p + "self_attn.k_norm.weight"] = [hd]
        for n, shape in (("gate_proj", [inter, h]), ("up_proj", [inter, h]), ("down_proj", [h, inter])):
            out[p + "mlp." + n + ".weight"] = shape
            if mlp_bias:
                out[p + "mlp." + n + ".bias"] = [shape[0]]
        norms = ["input_layernorm", "post_attention_layernorm"]
        if sandwich:
            norms += ["pre_feedforward_layernorm", "post_feedforward_layernorm"]
        for n in norms:
            out[p + n + ".weight"] = [h]
    out[prefix + "norm.weight"] = [h]
    if lm_head and not c.get("tie_word_embeddings", tie):
        out["lm_head.weight"] = [v, h]


def siglip_vision(c, prefix, out):
    d, inter, ch, ps = c["hidden_size"], c["intermediate_size"], c.get("num_channels", 3), c["patch_size"]
    n = (c["image_size"] // ps) ** 2
    out[prefix + "embeddings.patch_embedding.weight"] = [d, ch, ps, ps]
    out[prefix + "embeddings.patch_embedding.bias"] = [d]
    out[prefix + "embeddings.position_embedding.weight"] = [n, d]
    for i in range(c["num_hidden_layers"]):
        p = "%sencoder.layers.%d." % (prefix, i)
        for n_ in ("q_proj", "k_proj", "v_proj", "out_proj"):
            out[p + "self_attn." + n_ + ".weight"] = [d, d]
            out[p + "self_attn." + n_ + ".bias"] = [d]
        for n_ in ("layer_norm1", "layer_norm2"):
            out[p + n_ + ".weight"] = [d]
            out[p + n_ + ".bias"] = [d]
        out[p + "mlp.fc1.weight"], out[p + "mlp.fc1.bias"] = [inter, d], [inter]
        out[p + "mlp.fc2.weight"], out[p + "mlp.fc2.bias"] = [d, inter], [d]
    out[prefix + "post_layernorm.weight"] = [d]
    out[prefix + "post_layernorm.bias"] = [d]
    if c.get("vision_use_head", True):  # SiglipMultiheadAttentionPoolingHead
        out[prefix + "head.probe"] = [1, 1, d]
        out[prefix + "head.attention.in_proj_weight"] = [3 * d, d]
        out[prefix + "head.attention.in_proj_bias"] = [3 * d]
        out[prefix + "head.attention.out_proj.weight"] = [d, d]
        out[prefix + "head.attention.out_proj.bias"] = [d]
        out[prefix + "head.layernorm.weight"] = [d]
        out[prefix + "head.layernorm.bias"] = [d]
        out[prefix + "head.mlp.fc1.weight"], out[prefix + "head.mlp.fc1.bias"] = [inter, d], [inter]
        out[prefix + "head.mlp.fc2.weight"], out[prefix + "head.mlp.fc2.bias"] = [d, inter], [d]


def expected(cfg):
    arch = cfg["architectures"][0]
    out = {}
    if arch == "PaliGemmaForConditionalGeneration":
        vc, tc = cfg["vision_config"], dict(cfg["text_config"])
        tc.setdefault("model_type", "gemma")
        siglip_vision(vc, "model.vision_tower.", out)
        proj = vc.get("projection_dim", cfg.get("projection_dim", 2048))
        out["model.multi_modal_projector.linear.weight"] = [proj, vc["hidden_size"]]
        out["model.multi_modal_projector.linear.bias"] = [proj]
        decoder(tc, "model.language_model.", out, True)
    else:
        decoder(cfg, "model.", out, True)
    return out


def main():
    d = sys.argv[1]
    cfg = json.load(open(os.path.join(d, "config.json")))
    dt = cfg.get("torch_dtype") or cfg.get("dtype") or "float32"
    want_dtype = {"float32": "F32", "bfloat16": "BF16", "float16": "F16"}[dt]
    size = {"F32": 4, "BF16": 2, "F16": 2}[want_dtype]
    path = os.path.join(d, "model.safetensors")
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        f.seek(0, 2)
        data_len = f.tell() - 8 - n
    meta = header.pop("__metadata__", {})
    errors = []
    if meta.get("format") != "pt":
        errors.append("__metadata__.format is %r, not 'pt'" % meta.get("format"))
    want = expected(cfg)
    got = {k: v["shape"] for k, v in header.items()}
    for k in sorted(set(want) - set(got)):
        errors.append("missing %s %s" % (k, want[k]))
    for k in sorted(set(got) - set(want)):
        errors.append("unexpected %s %s" % (k, got[k]))
    spans = []
    for k in sorted(set(want) & set(got)):
        e = header[k]
        if e["shape"] != want[k]:
            errors.append("%s: shape %s, want %s" % (k, e["shape"], want[k]))
        if e["dtype"] != want_dtype:
            errors.append("%s: dtype %s, want %s" % (k, e["dtype"], want_dtype))
        a, b = e["data_offsets"]
        count = 1
        for s in e["shape"]:
            count *= s
        if b - a != count * size:
            errors.append("%s: %d bytes for %d elements" % (k, b - a, count))
        spans.append((a, b))
    spans.sort()
    pos = 0
    for a, b in spans:
        if a != pos:
            errors.append("data offsets not contiguous at %d" % a)
        pos = b
    if pos != data_len:
        errors.append("data section %d bytes, tensors cover %d" % (data_len, pos))
    if errors:
        print("\n".join(errors))
        sys.exit(1)
    print("ok %d tensors" % len(want))


if __name__ == "__main__":
    main()
