#!/usr/bin/python3
"""Makes deterministic, trained-looking U-Net checkpoints for the parity
tests and the benchmark, in a minute instead of hours of training.

A fixed-seed PyTorch initialisation gives nearly constant outputs, which
would make every mask empty.  So: the batch-norm running statistics are
calibrated on tiles of the training slide (a train-mode pass, as after
training), and the last 1x1 convolution is fitted (ridge regression, a
linear probe) to the class's annotated polygons on those tiles, then
scaled so the logits spread over several units.  The probabilities are
confident and follow the tissue's structures, as a trained model's do;
the rest of the network keeps its seeded random weights.

Usage: make_models.py --slide TRAIN.svs --annotations TRAIN.xml --out DIR
                      [--depth 5 --wf 4] [--classes A,B]
Writes DIR/<Class>/2026-01-01T00:00:00.ckpt.
"""
import argparse
import os
import sys
import xml.etree.ElementTree as ET

import cv2
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "lib"))
import reference  # noqa: E402
import unet_torch as unet  # noqa: E402

SEEDS = {"Glomerulus": 11, "Artery": 12, "Tubules": 13, "Arteriole": 14}
VERSION = "2026-01-01T00:00:00.ckpt"
TILES = 16
SMOOTH_BLOCKS = 2


def read_polygons(path, name):
    """Level-0 polygons of a class (PartOfGroup) from an ASAP file."""
    polys = []
    for ann in ET.parse(path).getroot().iter("Annotation"):
        if ann.get("PartOfGroup") != name:
            continue
        pts = sorted(ann.iter("Coordinate"), key=lambda c: int(c.get("Order")))
        polys.append(np.array([[float(c.get("X")), float(c.get("Y"))]
                               for c in pts]))
    return polys


def labelled_tiles(slide, polys, resize, rng):
    """TILES tiles of 256 px at the class's scale centred on random
    polygons of the class, with their rasterised masks."""
    size = int(round(256 / resize))
    images, masks = [], []
    for i in rng.choice(len(polys), TILES, replace=len(polys) < TILES):
        cx, cy = polys[i].mean(axis=0)
        x = int(cx - size / 2 + rng.integers(-size // 4, size // 4 + 1))
        y = int(cy - size / 2 + rng.integers(-size // 4, size // 4 + 1))
        rgb = reference.read_region(slide, x, y, size, size)
        images.append(cv2.resize(rgb, (256, 256),
                                 interpolation=cv2.INTER_CUBIC))
        mask = np.zeros((256, 256), np.uint8)
        for p in polys:
            pts = np.round((p - [x, y]) * 256 / size).astype(np.int32)
            cv2.fillPoly(mask, [pts], 1)
        masks.append(mask)
    batch = np.stack(images).transpose(0, 3, 1, 2).astype(np.float32) / 255
    return torch.from_numpy(batch), np.stack(masks)


def fit_last_layer(net, batch, masks):
    """Ridge regression of the class mask on the last layer's input."""
    captured = {}
    hook = net.last.register_forward_hook(
        lambda m, inp, out: captured.setdefault("x", inp[0]))
    with torch.no_grad():
        net(batch)
    hook.remove()
    feats = captured["x"].permute(0, 2, 3, 1).reshape(-1,
                                                      net.last.in_channels)
    x = np.hstack([feats.numpy().astype(np.float64),
                   np.ones((feats.shape[0], 1))])
    y = masks.reshape(-1).astype(np.float64) * 2 - 1
    w = np.linalg.solve(x.T @ x + 1e-3 * np.eye(x.shape[1]), x.T @ y)
    score = x @ w
    share = max(float(masks.mean()), 0.02)
    cut = np.quantile(score, 1.0 - share)
    gain = 8.0 / max(float(score.std()), 1e-9)
    with torch.no_grad():
        net.last.weight.zero_()
        net.last.bias.zero_()
        net.last.weight[1, :, 0, 0] = torch.from_numpy(w[:-1] * gain)
        net.last.bias[1] = float((w[-1] - cut) * gain)


def smooth_up_blocks(net, count):
    """Makes the last count up blocks pass their upsampled input on
    through two 3x3 box filters, leaving out the skip connection: the
    output then follows the deep levels' wide context smoothly, as a
    trained segmentation net's does, instead of the pixel noise of random
    shallow features."""
    with torch.no_grad():
        for up in list(net.up_path)[-count:]:
            first, second = up.conv_block.block[0], up.conv_block.block[3]
            n = first.weight.shape[0]
            for conv in (first, second):
                conv.weight.zero_()
                conv.bias.zero_()
                for o in range(n):
                    conv.weight[o, o] = 1.0 / 9.0


def make(slide, annotations, name, depth, wf, resize):
    seed = SEEDS.get(name, sum(map(ord, name)))
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    hp = dict(in_channels=3, n_classes=2, depth=depth, wf=wf,
              padding=True, batch_norm=True, up_mode="upconv")
    net = unet.UNet(**hp)
    smooth_up_blocks(net, SMOOTH_BLOCKS)
    batch, masks = labelled_tiles(slide, read_polygons(annotations, name),
                                  resize, rng)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative: the exact batch statistics
    net.train()
    with torch.no_grad():
        net(batch)
    net.eval()
    fit_last_layer(net, batch, masks)
    return net, hp


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--slide", required=True)
    parser.add_argument("--annotations", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--depth", type=int, default=5)
    parser.add_argument("--wf", type=int, default=4)
    parser.add_argument("--classes",
                        default="Glomerulus,Artery,Tubules,Arteriole")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count())
    for name in args.classes.split(","):
        resize = reference.CLASSES.get(name, (0, "", 0, 0.25))[3]
        net, hp = make(args.slide, args.annotations, name, args.depth,
                       args.wf, resize)
        folder = os.path.join(args.out, name)
        os.makedirs(folder, exist_ok=True)
        unet.save_ckpt(net, hp, os.path.join(folder, VERSION))


if __name__ == "__main__":
    main()
