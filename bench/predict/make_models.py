#!/usr/bin/python3
"""Makes deterministic, trained-looking U-Net checkpoints for the parity
tests and the benchmark, without hours of training.

A fixed-seed PyTorch initialisation gives nearly constant outputs, which
would make every mask empty.  So the batch-norm running statistics are
calibrated on tiles of the slide (a train-mode pass, as after training),
and the last layer is rescaled so that the positive-class logit has a
spread of several units and a chosen share of positive pixels: the
probabilities are confident and follow the image content, as a trained
model's do.

Usage: make_models.py --slide S --out DIR [--depth 5 --wf 4]
                      [--classes Glomerulus,Artery,Tubules,Arteriole]
Writes DIR/<Class>/<timestamp>.ckpt.
"""
import argparse
import os
import sys

import cv2
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference  # noqa: E402
import unet  # noqa: E402

# Per class: seed, share of positive pixels, calibration region resize.
SHARES = {"Glomerulus": (11, 0.12), "Artery": (12, 0.06),
          "Tubules": (13, 0.30), "Arteriole": (14, 0.05)}
VERSION = "2026-01-01T00:00:00.ckpt"


def calibration_tiles(slide, resize):
    """Four 256 px tiles of tissue at the class's scale."""
    tiles = []
    for x, y in ((500, 6400), (6000, 1000), (8000, 8000), (2000, 3000)):
        size = int(round(256 / resize))
        rgb = reference.read_region(slide, x, y, size, size)
        tiles.append(cv2.resize(rgb, (256, 256),
                                interpolation=cv2.INTER_CUBIC))
    batch = np.stack(tiles).transpose(0, 3, 1, 2).astype(np.float32) / 255
    return torch.from_numpy(batch)


def make(slide, name, depth, wf, resize):
    seed, share = SHARES.get(name, (sum(map(ord, name)), 0.1))
    torch.manual_seed(seed)
    hp = dict(in_channels=3, n_classes=2, depth=depth, wf=wf,
              padding=True, batch_norm=True, up_mode="upconv")
    net = unet.UNet(**hp)
    batch = calibration_tiles(slide, resize)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative: the exact batch statistics
    net.train()
    with torch.no_grad():
        net(batch)
    net.eval()
    with torch.no_grad():
        logits = net(batch)
    diff = (logits[:, 1] - logits[:, 0]).flatten().numpy()
    cut = np.quantile(diff, 1.0 - share)
    gain = 8.0 / max(float(diff.std()), 1e-6)
    with torch.no_grad():
        w, b = net.last.weight, net.last.bias
        dw, db = w[1] - w[0], b[1] - b[0]
        w[0].zero_()
        b[0].zero_()
        w[1].copy_(dw * gain)
        b[1].copy_((db - float(cut)) * gain)
    return net, hp


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--slide", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--depth", type=int, default=5)
    parser.add_argument("--wf", type=int, default=4)
    parser.add_argument("--classes",
                        default="Glomerulus,Artery,Tubules,Arteriole")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count())
    for name in args.classes.split(","):
        resize = reference.CLASSES.get(name, (0, "", 0, 0.25))[3]
        net, hp = make(args.slide, name, args.depth, args.wf, resize)
        folder = os.path.join(args.out, name)
        os.makedirs(folder, exist_ok=True)
        unet.save_ckpt(net, hp, os.path.join(folder, VERSION))


if __name__ == "__main__":
    main()
