#!/usr/bin/env python3
"""PyTorch reference for `reel bench vit`: the same ViT classifier as reel's models.ViT (patch
embedding as a linear layer on patchified pixels, learned positions, pre-norm blocks with
nn.MultiheadAttention and a GELU MLP, final LayerNorm, mean pool, linear head), trained with AdamW on the
same shapes. Prints one JSON line: {"step_s": ..., "first_s": ..., "peak_mib": ..., "params": ...,
"threads": ...}. peak_mib is the growth of the process's peak RSS over the run on CPU, and
torch.cuda.max_memory_allocated on GPU.

Usage: python3 bench/vit_torch.py IMAGE PATCH DIM LAYERS HEADS BATCH CLASSES WARM STEPS [DEVICE [PRECISION]]
  DEVICE: cpu (default) or cuda; PRECISION: f32 (default) or bf16 (autocast: matmuls in bf16,
  parameters and optimizer state in f32, as reel's train.precision: bf16).
"""
import json
import os
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    """A pre-norm transformer block as a PyTorch user writes it: nn.MultiheadAttention (fused
    input projection, PyTorch's own attention kernels) and a GELU MLP."""

    def __init__(self, d, heads, ratio=4):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.fc1, self.fc2 = nn.Linear(d, ratio * d), nn.Linear(ratio * d, d)
        self.heads = heads

    def forward(self, x, valid=None, key_bias=None):
        """valid [B, T] bool: keys a query may attend to (reel's KeyMask); key_bias [B, T]: added to
        every query's logit of that key (STTS's log-score bias)."""
        b, t, _ = x.shape
        mask = None
        if key_bias is not None:  # a float mask is added to the logits, one [T, T] per head
            mask = key_bias[:, None, None, :].expand(b, self.heads, t, t).reshape(b * self.heads, t, t)
        h = self.ln1(x)
        a, _ = self.attn(h, h, h, key_padding_mask=None if valid is None else ~valid, attn_mask=mask, need_weights=False)
        x = x + a
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class ViT(nn.Module):
    def __init__(self, image, patch, d, layers, heads, classes):
        super().__init__()
        self.patch = patch
        n = (image // patch) ** 2
        self.embed = nn.Linear(patch * patch * 3, d)
        self.pos = nn.Parameter(torch.randn(n, d) * 0.02)
        self.blocks = nn.ModuleList([Block(d, heads) for _ in range(layers)])
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, classes)

    def forward(self, img):  # img [B, H, W, 3]
        b, h, w, c = img.shape
        p = self.patch
        x = img.view(b, h // p, p, w // p, p, c).permute(0, 1, 3, 2, 4, 5).reshape(b, -1, p * p * c)
        x = self.embed(x * 2 - 1) + self.pos
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.ln(x).mean(1))


def rss_kib(field="VmRSS"):
    """Current (VmRSS) or peak (VmHWM) resident set size in KiB (Linux), else the peak so far."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure(build, device, precision, warm, steps):
    """Times AdamW training steps of the model build() returns (with its fixed batch x, y): the
    first step, then the mean of `steps` steps after `warm` warm-up steps in all; peak memory."""
    # PyTorch's intra-op threads ($REEL_TORCH_THREADS, default: all cores). On the CPU, reel runs
    # each reference with all cores and with 1 and keeps the faster: Debian's torch calls an
    # OpenBLAS that starts its own threads, and with both at full count they oversubscribe the cores.
    threads = int(os.environ.get("REEL_TORCH_THREADS") or 0) or os.cpu_count() or 1
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    try:  # reset the peak RSS (VmHWM) left by the imports, so the peak below is the run's
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    rss0 = rss_kib()
    model, x, y = build()
    model, x, y = model.to(device), x.to(device), y.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    if device == "cuda":  # f32 products as TF32, as XLA (go-xla) runs them on CUDA by default
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=precision == "bf16"):
            out = model(x)
            if isinstance(out, tuple):  # (logits, auxiliary loss)
                out, aux = out
                loss = F.cross_entropy(out, y) + aux
            else:
                loss = F.cross_entropy(out, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    start = time.perf_counter()
    step()
    sync()
    first = time.perf_counter() - start
    for _ in range(warm - 1):
        step()
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    dt = (time.perf_counter() - start) / steps
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = (rss_kib("VmHWM") - rss0) / 1024  # growth of the peak RSS over the run
    params = sum(p.numel() for p in model.parameters())
    return {"step_s": dt, "first_s": first, "peak_mib": peak, "params": params, "threads": threads,
            "torch": torch.__version__}


def main():
    image, patch, d, layers, heads, batch, classes, warm, steps = map(int, sys.argv[1:10])
    device = sys.argv[10] if len(sys.argv) > 10 else "cpu"
    precision = sys.argv[11] if len(sys.argv) > 11 else "f32"

    def build():
        model = ViT(image, patch, d, layers, heads, classes)
        return model, torch.rand(batch, image, image, 3), torch.randint(0, classes, (batch,))

    print(json.dumps(measure(build, device, precision, warm, steps)))


if __name__ == "__main__":
    main()
