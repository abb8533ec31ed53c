#!/usr/bin/python3
"""Reads aapi's native weight file (.aapimodel, src/nn/README.md) into a
PyTorch U-Net and writes it as a Lightning-style checkpoint, so that
reference.py runs the very weights aapi trained.

Usage: aapimodel.py IN.aapimodel OUT.ckpt
"""
import hashlib
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "tests", "lib"))
import unet_torch as unet  # noqa: E402

MAGIC = b"AAPIUNET"
DTYPES = {0: np.dtype("<f4"), 1: np.dtype("<i8")}


class Reader:
    """Little-endian fields from a byte string, in order."""

    def __init__(self, data):
        self.data, self.at = data, 0

    def take(self, size):
        if self.at + size > len(self.data):
            raise ValueError("truncated .aapimodel")
        piece = self.data[self.at:self.at + size]
        self.at += size
        return piece

    def u32(self):
        return struct.unpack("<I", self.take(4))[0]


def read(path):
    """(hyper-parameters, state dict of tensors) of a .aapimodel file."""
    with open(path, "rb") as f:
        data = f.read()
    body, digest = data[:-32], data[-32:]
    if data[:8] != MAGIC or hashlib.sha256(body).digest() != digest:
        raise ValueError(f"{path}: not an intact .aapimodel")
    r = Reader(body)
    r.take(8)
    if r.u32() != 1:
        raise ValueError(f"{path}: unknown format version")
    in_ch, n_classes, depth, wf = r.u32(), r.u32(), r.u32(), r.u32()
    padding, bn, up, _ = r.take(4)
    hp = dict(in_channels=in_ch, n_classes=n_classes, depth=depth, wf=wf,
              padding=bool(padding), batch_norm=bool(bn),
              up_mode="upsample" if up else "upconv")
    state = {}
    for _ in range(r.u32()):
        name = r.take(r.u32()).decode("utf-8")
        dtype, ndim = DTYPES[r.u32()], r.u32()
        shape = struct.unpack(f"<{ndim}q", r.take(8 * ndim))
        count = int(np.prod(shape)) if ndim else 1
        arr = np.frombuffer(r.take(count * dtype.itemsize), dtype)
        state[name] = torch.from_numpy(arr.reshape(shape).copy())
    return hp, state


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    hp, state = read(sys.argv[1])
    net = unet.UNet(**hp)
    net.load_state_dict(state)
    unet.save_ckpt(net, hp, sys.argv[2])


if __name__ == "__main__":
    main()
