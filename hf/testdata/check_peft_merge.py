"""Independent check of a reel export (standard library only, no reel code): reads the pretrained
model.safetensors, a PEFT adapter (adapter_config.json + adapter_model.safetensors) and the merged
Hugging Face export, and checks that every adapted weight of the export is
W + (lora_alpha / r) * lora_B @ lora_A, as PEFT's merge_and_unload computes it
(huggingface/peft src/peft/tuners/lora/layer.py Linear.get_delta_weight). Prints one JSON line.

usage: check_peft_merge.py PRETRAINED_DIR PEFT_DIR EXPORT_DIR
"""
import json
import struct
import sys


def read_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        if e["dtype"] == "F32":
            vals = struct.unpack("<%df" % ((end - b) // 4), data[b:end])
        else:
            vals = None  # only F32 tensors are compared
        out[name] = (e["dtype"], e["shape"], vals)
    return out


def main():
    src_dir, peft_dir, exp_dir = sys.argv[1:4]
    src = read_safetensors(src_dir + "/model.safetensors")
    exp = read_safetensors(exp_dir + "/model.safetensors")
    ad = read_safetensors(peft_dir + "/adapter_model.safetensors")
    cfg = json.load(open(peft_dir + "/adapter_config.json"))
    scale = cfg["lora_alpha"] / cfg["r"]
    prefix = "base_model.model."
    worst, checked = 0.0, []
    for key in sorted(ad):
        if not key.endswith(".lora_A.weight"):
            continue
        module = key[len(prefix):-len(".lora_A.weight")]
        _, (r, n_in), a = ad[key]
        _, (n_out, r2), bm = ad[prefix + module + ".lora_B.weight"]
        assert r == r2 == cfg["r"], (key, r, r2)
        _, shape, w = src[module + ".weight"]
        _, eshape, e = exp[module + ".weight"]
        assert shape == eshape == [n_out, n_in], (module, shape, eshape)
        for o in range(n_out):
            for i in range(n_in):
                d = sum(bm[o * r + k] * a[k * n_in + i] for k in range(r))
                worst = max(worst, abs(w[o * n_in + i] + scale * d - e[o * n_in + i]))
        checked.append(module)
    names_match = sorted(n for n in src) == sorted(n for n in exp if not n.startswith("reel."))
    print(json.dumps({"modules": checked, "max_abs_diff": worst, "names_match": names_match}))


main()
