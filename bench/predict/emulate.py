#!/usr/bin/python3
"""reference.py with every convolution's input and weights rounded to a
lower precision (float32 sums), to tell before writing kernels whether a
precision can keep the old pipeline's masks with given weights:

- bf16: inputs and weights rounded to bfloat16, as oneDNN's AMX and
  AVX-512 BF16 kernels read them;
- int8: aapi's int8 scheme (src/nn/README.md): each 3x3 convolution's
  input per tensor to u8 (never negative) or s8 over its largest
  magnitude, weights per output channel to 7 bits; the ranges are
  calibrated on the first tile the network sees.

Usage: emulate.py bf16|int8 REFERENCE.PY-ARGUMENTS...
Its polygons compare with reference.py's through compare.py.
"""
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "lib"))
import reference  # noqa: E402
import unet_torch as unet  # noqa: E402


def bf16(t):
    return t.bfloat16().float()


def to_bf16(net):
    """Rounds weights now and inputs on every call."""
    for m in net.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            m.weight.data = bf16(m.weight.data)
            m.register_forward_pre_hook(lambda m, i: (bf16(i[0]),))


def quantize(t, low, high):
    """Symmetric 8-bit rounding over the calibrated range."""
    top = max(high, -low, 1e-30)
    if low < 0:
        scale = top / 127
        return torch.clamp(torch.round(t / scale), -128, 127) * scale
    scale = top / 255
    return torch.clamp(torch.round(t / scale), 0, 255) * scale


def to_int8(net):
    """7-bit weights now; the inputs' ranges from the first call."""
    ranges = {}

    def hook(m, inp):
        t = inp[0]
        if m not in ranges:
            ranges[m] = (t.min().item(), t.max().item())
        return (quantize(t, *ranges[m]),)

    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3):
            w = m.weight.data
            step = w.abs().amax(dim=(1, 2, 3), keepdim=True) / 63
            m.weight.data = torch.round(w / step.clamp_min(1e-30)) * step
            m.register_forward_pre_hook(hook)


def main():
    mode = sys.argv.pop(1) if len(sys.argv) > 1 else ""
    change = {"bf16": to_bf16, "int8": to_int8}.get(mode)
    if change is None:
        sys.exit(__doc__)
    load = unet.load_ckpt

    def load_reduced(path):
        net = load(path)
        change(net)
        return net

    unet.load_ckpt = load_reduced
    reference.main()


if __name__ == "__main__":
    main()
