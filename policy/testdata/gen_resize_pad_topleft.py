#!/usr/bin/env python3
"""Expected outputs of LeRobot's SmolVLA image resizing for policy.ResizePadTopLeft's test.

resize_with_pad is copied from huggingface/lerobot src/lerobot/policies/common/vla_utils.py (SmolVLA's
prepare_images calls it with resize_imgs_with_padding and pad_value=0); torch 1.13 (Debian python3-torch).
Writes resize_pad_topleft.json: per case the input (HWC, [0, 1]) and the output (HWC).

Run: /usr/bin/python3 gen_resize_pad_topleft.py
"""
import json
import os

import torch
import torch.nn.functional as F


def resize_with_pad(img, height, width, *, pad_value):
    if img.ndim != 4:
        raise ValueError(f"(b,c,h,w) expected, but got {img.shape}")
    current_height, current_width = img.shape[2:]
    if current_height == height and current_width == width:
        return img
    ratio = max(current_width / width, current_height / height)
    resized_height = int(current_height / ratio)
    resized_width = int(current_width / ratio)
    resized_img = F.interpolate(img, size=(resized_height, resized_width), mode="bilinear", align_corners=False)
    pad_height = max(0, height - resized_height)
    pad_width = max(0, width - resized_width)
    return F.pad(resized_img, (pad_width, 0, pad_height, 0), value=pad_value)


g = torch.Generator().manual_seed(3)
cases = []
for (w, h), (tw, th) in [((20, 15), (8, 8)), ((7, 5), (8, 8)), ((9, 13), (6, 6))]:
    img = torch.rand(1, 3, h, w, generator=g)
    out = resize_with_pad(img, th, tw, pad_value=0)
    cases.append({"w": w, "h": h, "tw": tw, "th": th, "in": img[0].permute(1, 2, 0).flatten().tolist(),
                  "out": out[0].permute(1, 2, 0).flatten().tolist()})
json.dump(cases, open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "resize_pad_topleft.json"), "w"))
