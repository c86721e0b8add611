#!/usr/bin/env python3
"""Generates hf/testdata/idefics3 and hf/testdata/smolvlm: tiny random Idefics3ForConditionalGeneration
and SmolVLMForConditionalGeneration checkpoints and the outputs reel must match.

An independent PyTorch implementation written from huggingface/transformers
src/transformers/models/idefics3/modeling_idefics3.py and src/transformers/models/smolvlm/modeling_smolvlm.py
(Idefics3VisionEmbeddings with its bucketised position ids and patch mask, the SigLIP encoder,
Idefics3Connector.pixel_shuffle and modality_projection, inputs_merger, the Llama text model, lm_head),
run with Debian's python3-torch 1.13 on the CPU in float32 with eager attention. The SigLIP encoder
layers, the Llama decoder, safetensors writing and greedy decoding are gen_fixtures.py's (same
directory). The prompts are laid out as transformers' Idefics3Processor / SmolVLMProcessor do
(processing_idefics3.py, processing_smolvlm.py): <fake_token_around_image><row_r_col_c> then
image_seq_len <image> per split, "\\n" after each row of splits, then
"\\n<fake_token_around_image><global-img>" + image_seq_len <image> + <fake_token_around_image>.

Logits are stored as float32 .npy (expected.json holds the ids and the greedy continuations), to
keep the fixtures small.

The image fixtures (image/smolvlm_*) run SmolVLMImageProcessor's steps with Debian's python3-pil.

Usage: python3 hf/testdata/gen_idefics3.py [OUT_DIR [images]]   (images: only the image fixtures)
"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_fixtures as G  # noqa: E402

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
G.OUT = OUT

# Token ids of the tiny vocabulary (128): specials at the top, as in SmolVLM's tokenizer.
IMG, FAKE, GLOBAL = 127, 126, 125
ROWCOL = {(1, 1): 121, (1, 2): 122, (2, 1): 123, (2, 2): 124}
NL, BOS, EOS = 10, 1, 2


# SmolVLM2's preprocessor_config.json at the fixture's scale (a 16-pixel tile, longest edge 32).
SMOLVLM_PP = {"do_convert_rgb": True, "do_image_splitting": True, "do_normalize": True, "do_pad": True, "do_rescale": True,
              "do_resize": True, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
              "image_processor_type": "SmolVLMImageProcessor", "max_image_size": {"longest_edge": 16},
              "processor_class": "SmolVLMProcessor", "resample": 1, "rescale_factor": 1 / 255,
              "size": {"longest_edge": 32}}

# A word-level tokenizer.json with the fixture's ids: the processor's added tokens, "\n", and the
# BOS its post-processor adds (an added token takes its vocabulary id).
_SPECIAL = {"<s>": BOS, "</s>": EOS, "\n": NL, "<image>": IMG, "<fake_token_around_image>": FAKE, "<global-img>": GLOBAL}
_SPECIAL.update({"<row_%d_col_%d>" % rc: i for rc, i in ROWCOL.items()})
TOKENIZER = {
    "added_tokens": [{"id": i, "content": t, "special": t != "\n"} for t, i in _SPECIAL.items()],
    "pre_tokenizer": {"type": "WhitespaceSplit"},
    "post_processor": {"type": "TemplateProcessing",
                       "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                       "pair": [{"Sequence": {"id": "A", "type_id": 0}}],
                       "special_tokens": {"<s>": {"id": "<s>", "ids": [BOS], "tokens": ["<s>"]}}},
    "model": {"type": "WordLevel", "unk_token": "[UNK]",
              "vocab": dict({"[UNK]": 0, "a": 30, "b": 31, "c": 32, "d": 40, "e": 41, "f": 42}, **_SPECIAL)},
}


def vision_embeddings(sd, p, vc, pixels, patch_attention_mask):
    """Idefics3VisionEmbeddings.forward."""
    ps = vc["patch_size"]
    n_side = vc["image_size"] // ps
    b, _, h, w = pixels.shape
    x = torch.nn.functional.conv2d(pixels, sd[p + "embeddings.patch_embedding.weight"],
                                   sd[p + "embeddings.patch_embedding.bias"], stride=ps)
    x = x.flatten(2).transpose(1, 2)
    mh, mw = h // ps, w // ps
    boundaries = torch.arange(1 / n_side, 1.0, 1 / n_side)
    position_ids = torch.full(size=(b, mh * mw), fill_value=0)
    for i, m in enumerate(patch_attention_mask):
        nh, nw = m[:, 0].sum(), m[0].sum()
        fh = torch.arange(0, 1 - 1e-6, 1 / nh)
        fw = torch.arange(0, 1 - 1e-6, 1 / nw)
        bh = torch.bucketize(fh, boundaries, right=True)
        bw = torch.bucketize(fw, boundaries, right=True)
        pos = (bh[:, None] * n_side + bw).flatten()
        position_ids[i][m.view(-1)] = pos
    return x + sd[p + "embeddings.position_embedding.weight"][position_ids]


def vision_model(sd, vc, pixels):
    """Idefics3VisionTransformer over real images (pixel_attention_mask all ones, as
    Idefics3Model.forward builds it when the processor gives none)."""
    p = "model.vision_model."
    ps = vc["patch_size"]
    mask = torch.ones(pixels.shape[0], pixels.shape[2], pixels.shape[3], dtype=torch.bool)
    sub = mask.unfold(1, ps, ps).unfold(2, ps, ps)
    patch_mask = sub.sum(dim=(-1, -2)) > 0
    x = vision_embeddings(sd, p, vc, pixels, patch_mask)
    # all patches real: transformers passes no attention mask to the encoder
    states = G.encoder_forward(sd, p, vc, x)
    return G.layer_norm(states[-1], sd, p + "post_layernorm", vc["layer_norm_eps"])


def pixel_shuffle(x, scale_factor):
    """Idefics3Connector.pixel_shuffle, verbatim in its views and permutes."""
    bsz, seq, embed_dim = x.size()
    height = width = int(seq ** 0.5)
    x = x.view(bsz, height, width, embed_dim)
    x = x.view(bsz, height, int(width / scale_factor), embed_dim * scale_factor)
    x = x.permute(0, 2, 1, 3)
    x = x.reshape(bsz, int(width / scale_factor), int(height / scale_factor), embed_dim * (scale_factor ** 2))
    x = x.permute(0, 2, 1, 3)
    return x.reshape(bsz, int(seq / (scale_factor ** 2)), embed_dim * (scale_factor ** 2))


def connector(sd, x, s):
    return pixel_shuffle(x, s) @ sd["model.connector.modality_projection.proj.weight"].t()


def inputs_merger_smolvlm(ids, emb, feats):
    """SmolVLMModel.inputs_merger: whole image blocks in order."""
    _, patch_size, _ = feats.shape
    image_mask = ids == IMG
    n = image_mask.sum(dim=1)
    assert torch.all(n % patch_size == 0)
    blocks = n // patch_size
    offsets = torch.nn.functional.pad(blocks.cumsum(dim=0), (1, 0), value=0)
    block_offset = offsets[:-1]
    row_cum = image_mask.cumsum(dim=-1)
    chunk_idx = (row_cum - 1) // patch_size
    local_idx = (row_cum - 1) % patch_size
    block_idx = block_offset.unsqueeze(1) + chunk_idx
    image_embeds = torch.zeros_like(emb)
    image_embeds[image_mask] = feats[block_idx[image_mask], local_idx[image_mask], :]
    return torch.where(image_mask.unsqueeze(-1), image_embeds, emb)


def inputs_merger_idefics3(ids, emb, feats):
    """Idefics3Model.inputs_merger."""
    emb = emb.clone()
    emb[ids == IMG] = feats.reshape(-1, feats.shape[-1])
    return emb


def make(name, arch, tc, vc, scale, tiles, dtype, new_tokens=5):
    torch.manual_seed({"idefics3": 11, "smolvlm": 12}[name])
    sd = {}
    G.vision_weights(sd, "model.vision_model.", vc, "siglip", False)
    sd["model.connector.modality_projection.proj.weight"] = G.rnd(tc["hidden_size"], vc["hidden_size"] * scale * scale)
    tied = tc.get("tie_word_embeddings", False)
    G.decoder_weights(tc, "model.text_model.", sd, tied)
    sd = G.rounded(sd, dtype)
    seq_len = (vc["image_size"] // vc["patch_size"]) ** 2 // (scale * scale)
    rows, cols = tiles
    image = []
    if rows * cols > 0:
        for r in range(rows):
            for c in range(cols):
                image += [FAKE, ROWCOL[(r + 1, c + 1)]] + [IMG] * seq_len
            image += [NL]
        image += [NL]
    image += [FAKE, GLOBAL] + [IMG] * seq_len + [FAKE]
    n_tiles = rows * cols + 1
    prompt = [BOS, 30, 31, 32] + image + [40, 41, 42]  # "a b c<image>d e f"
    text = [BOS, 30, 31, 32, 33, 34, 35, 36, 37]
    pixels = torch.rand(n_tiles, 3, vc["image_size"], vc["image_size"]) * 2 - 1
    if name == "smolvlm":  # the pixels of a PNG through SmolVLM's processor (an end-to-end CLI check)
        from PIL import Image
        rng = np.random.default_rng(2)
        img = Image.fromarray(rng.integers(0, 256, size=(30, 45, 3), dtype=np.uint8), "RGB")
        px, r, c = process(img, SMOLVLM_PP)
        assert (r, c) == tiles, (r, c)
        pixels = torch.from_numpy(px)
    merger = inputs_merger_smolvlm if arch.startswith("SmolVLM") else inputs_merger_idefics3
    dec = "model.text_model."

    def forward(ids, px):
        x = G.decoder_embed(tc, dec, sd, ids)
        if px is not None:
            x = merger(ids, x, connector(sd, vision_model(sd, vc, px), scale))
        pos = torch.arange(ids.shape[1])[None]
        return G.lm_head(tc, dec, sd, G.decoder_forward(tc, dec, sd, x, pos))

    with torch.no_grad():
        vis = vision_model(sd, vc, pixels)
        feats = connector(sd, vis, scale)
        logits = forward(torch.tensor([prompt]), pixels)
        text_logits = forward(torch.tensor([text]), None)
        gen = G.greedy(lambda x: forward(x, pixels), torch.tensor([prompt]), new_tokens, [EOS])
        gen_text = G.greedy(lambda x: forward(x, None), torch.tensor([text]), new_tokens, [EOS])
        # SmolVLA's backbone: the text model cut to its first layer (LeRobot's smolvlm_with_expert.py
        # keeps num_vlm_layers), final norm kept, over the prompt with the image merged in.
        ids = torch.tensor([prompt])
        x = merger(ids, G.decoder_embed(tc, dec, sd, ids), feats)
        cut = G.decoder_forward(dict(tc, num_hidden_layers=1), dec, sd, x, torch.arange(ids.shape[1])[None])
    vconf = dict(vc, model_type="smolvlm_vision" if arch.startswith("SmolVLM") else "idefics3_vision")
    config = {"architectures": [arch], "model_type": "smolvlm" if arch.startswith("SmolVLM") else "idefics3",
              "image_token_id": IMG, "scale_factor": scale, "vision_config": vconf, "text_config": tc,
              "tie_word_embeddings": tied, "torch_dtype": {"F32": "float32", "BF16": "bfloat16"}[dtype]}
    d = G.save(name, config, sd, dtype,
               extra={"prompt": prompt, "tokens": prompt, "text_tokens": text, "tiles": [rows, cols],
                      "image_seq_len": seq_len, "generated": gen, "generated_text": gen_text},
               gen_config={"bos_token_id": BOS, "eos_token_id": EOS})
    np.save(os.path.join(d, "pixels.npy"), pixels.numpy().astype(np.float32))
    if name == "smolvlm":
        img.save(os.path.join(d, "image.png"))
        with open(os.path.join(d, "preprocessor_config.json"), "w") as f:
            json.dump(SMOLVLM_PP, f, indent=2)
        with open(os.path.join(d, "tokenizer.json"), "w") as f:
            json.dump(TOKENIZER, f, indent=1)
    np.save(os.path.join(d, "logits.npy"), logits.numpy().astype(np.float32))
    np.save(os.path.join(d, "text_logits.npy"), text_logits.numpy().astype(np.float32))
    if name == "smolvlm":
        np.save(os.path.join(d, "hidden_1layer.npy"), cut.numpy().astype(np.float32))
    if name == "idefics3":  # the tower alone (smolvlm checks it through image_features)
        np.save(os.path.join(d, "vision.npy"), vis.numpy().astype(np.float32))
    np.save(os.path.join(d, "image_features.npy"), feats.numpy().astype(np.float32))


def process(img, pp):
    """SmolVLMImageProcessor.preprocess (image_processing_smolvlm.py, the slow PIL path) for one
    RGB image: resize the longest edge, resize_for_vision_encoder + split_image (or the square
    resize), rescale (float64 → float32) and normalise (float32)."""
    import math
    from PIL import Image
    x = np.array(img)
    h, w = x.shape[:2]
    r = pp["resample"]

    def resize(a, hh, ww):
        return np.array(Image.fromarray(a).resize((ww, hh), resample=r))

    L = pp["size"]["longest_edge"]
    aspect = w / h
    if w >= h:
        nw, nh = L, int(L / aspect)
        nh += nh % 2
    else:
        nh, nw = L, int(L * aspect)
        nw += nw % 2
    x = resize(x, nh, nw)
    h, w = x.shape[:2]
    M = pp["max_image_size"]["longest_edge"]
    rows = cols = 0
    frames = []
    if pp["do_image_splitting"]:
        aspect = w / h
        if w >= h:
            w = math.ceil(w / M) * M
            h = math.ceil(int(w / aspect) / M) * M
        else:
            h = math.ceil(h / M) * M
            w = math.ceil(int(h * aspect) / M) * M
        x = resize(x, h, w)
        if h > M or w > M:
            rows, cols = math.ceil(h / M), math.ceil(w / M)
            oh, ow = math.ceil(h / rows), math.ceil(w / cols)
            for i in range(rows):
                for j in range(cols):
                    frames.append(x[i * oh:min(i * oh + oh, h), j * ow:min(j * ow + ow, w)])
            x = resize(x, M, M)
    else:
        x = resize(x, M, M)
    frames.append(x)
    out = []
    for f in frames:
        f = (f.astype(np.float64) * pp["rescale_factor"]).astype(np.float32)
        f = (f - np.array(pp["image_mean"], dtype=np.float32)) / np.array(pp["image_std"], dtype=np.float32)
        out.append(f.transpose(2, 0, 1))
    return np.stack(out).astype(np.float32), rows, cols


def make_images():
    """Two RGB PNGs through SmolVLM's processor: 45×30 split into 2×3 tiles of 16 plus the global
    image (Lanczos, upscaled to longest edge 48); 20×28 unsplit (bicubic, longest edge 24)."""
    from PIL import Image
    d = os.path.join(OUT, "image")
    rng = np.random.default_rng(1)
    cases = {
        "smolvlm_split": ((30, 45, 3), {"do_resize": True, "size": {"longest_edge": 48}, "resample": 1,
                                        "do_image_splitting": True, "max_image_size": {"longest_edge": 16}}),
        "smolvlm_single": ((28, 20, 3), {"do_resize": True, "size": {"longest_edge": 24}, "resample": 3,
                                         "do_image_splitting": False, "max_image_size": {"longest_edge": 16}}),
    }
    for name, (shape, pp) in cases.items():
        pp = dict(pp, do_convert_rgb=True, do_rescale=True, rescale_factor=1 / 255, do_normalize=True,
                  image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5], do_pad=True,
                  image_processor_type="SmolVLMImageProcessor", processor_class="SmolVLMProcessor")
        img = Image.fromarray(rng.integers(0, 256, size=shape, dtype=np.uint8), "RGB")
        img.save(os.path.join(d, name + ".png"))
        px, rows, cols = process(img, pp)
        np.save(os.path.join(d, name + ".npy"), px)
        with open(os.path.join(d, name + "_preprocessor_config.json"), "w") as f:
            json.dump(dict(pp, _rows=rows, _cols=cols), f, indent=2)


def main():
    if sys.argv[2:] == ["images"]:
        make_images()
        return
    vc = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
          "image_size": 16, "patch_size": 4, "num_channels": 3, "hidden_act": "gelu_pytorch_tanh",
          "layer_norm_eps": 1e-6}
    tc = {"model_type": "llama", "vocab_size": 128, "hidden_size": 32, "intermediate_size": 48,
          "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8,
          "rms_norm_eps": 1e-5, "max_position_embeddings": 256, "hidden_act": "silu", "rope_theta": 100000.0,
          "bos_token_id": BOS, "eos_token_id": EOS, "pad_token_id": 0, "tie_word_embeddings": False}
    tc = dict(tc, intermediate_size=32)
    # Idefics3: untied lm_head, scale_factor 2, one image without splitting (4 image tokens), F32.
    make("idefics3", "Idefics3ForConditionalGeneration", tc, vc, 2, (0, 0), "F32")
    # SmolVLM2: head tied through text_config, scale_factor 4 over an 8×8 patch grid (4 tokens per
    # tile), the image split 2×2 plus the global image (5 tiles), BF16 weights.
    make("smolvlm", "SmolVLMForConditionalGeneration", dict(tc, tie_word_embeddings=True),
         dict(vc, patch_size=2), 4, (2, 2), "BF16")
    make_images()


if __name__ == "__main__":
    main()
