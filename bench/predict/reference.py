#!/usr/bin/python3
"""The old service's region prediction, rebuilt from DESIGN.md as the
parity and speed baseline for aapi's pipeline.

Per class: read the level-0 region, cv2.resize by the class's resize
(INTER_CUBIC), mirror-pad (np.pad 'reflect': the edge pixel is not
repeated), run the U-Net on patch_size tiles at stride_size over the
padded image, softmax, keep P(class), zero it below the threshold, stitch
by per-pixel max, crop the padding, resize back to the region (nearest),
binarise at 0.5, open (7x7, 3 iterations).  Then per-pixel argmax over the
classes (label order breaks ties, background where all are zero), outer
contours per class, drop those under min_size.

The network input is the RGB tile as float32 in [0, 1], NCHW.

Usage: reference.py --slide S --region x,y,w,h --model Class=path.ckpt ...
       [--out DIR] [--json]
"""
import argparse
import json
import os
import sys
import time

import cv2
import numpy as np
import openslide
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "lib"))
import unet_torch as unet  # noqa: E402

# The label config defaults of DESIGN.md: label, colour, min_size, resize.
CLASSES = {
    "Glomerulus": (1, "#4dd156", 20000.0, 0.125),
    "Artery": (2, "#d9cb11", 15000.0, 0.25),
    "Tubules": (3, "#e89f17", 4000.0, 0.25),
    "Arteriole": (4, "#1eaac9", 4000.0, 0.25),
}
PATCH, STRIDE, PAD, THRESHOLD = 256, 64, 128, 0.5


def read_region(path, x, y, w, h):
    """Level-0 RGB, transparent pixels on white."""
    slide = openslide.OpenSlide(path)
    rgba = np.asarray(slide.read_region((x, y), 0, (w, h)), dtype=np.float32)
    alpha = rgba[:, :, 3:4] / 255.0
    rgb = rgba[:, :, :3] * alpha + 255.0 * (1.0 - alpha)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def tile_heatmap(net, padded):
    """The old tiling: every patch_size tile at stride_size, max-stitched."""
    hp, wp = padded.shape[:2]
    heat = np.zeros((hp, wp), np.float32)
    for ty in range(0, hp - PATCH + 1, STRIDE):
        for tx in range(0, wp - PATCH + 1, STRIDE):
            tile = padded[ty:ty + PATCH, tx:tx + PATCH]
            inp = torch.from_numpy(np.ascontiguousarray(
                tile.transpose(2, 0, 1)[None], dtype=np.float32) / 255.0)
            with torch.no_grad():
                prob = torch.softmax(net(inp), 1)[0, 1].numpy()
            prob = np.where(prob < THRESHOLD, 0.0, prob)
            view = heat[ty:ty + PATCH, tx:tx + PATCH]
            np.maximum(view, prob, out=view)
    return heat


def class_mask(net, rgb, resize):
    """The binary, opened mask of one class at region size."""
    h, w = rgb.shape[:2]
    rw, rh = max(1, int(round(w * resize))), max(1, int(round(h * resize)))
    small = cv2.resize(rgb, (rw, rh), interpolation=cv2.INTER_CUBIC)
    padded = np.pad(small, ((PAD, PAD), (PAD, PAD), (0, 0)), mode="reflect")
    heat = tile_heatmap(net, padded)[PAD:PAD + rh, PAD:PAD + rw]
    heat = cv2.resize(heat, (w, h), interpolation=cv2.INTER_NEAREST)
    binary = (heat > 0.5).astype(np.uint8)
    kernel = np.ones((7, 7), np.uint8)
    return cv2.morphologyEx(binary, cv2.MORPH_OPEN, kernel, iterations=3)


def combine(masks):
    """Per-pixel argmax; 0 = background, i + 1 = the i-th class."""
    stack = np.stack(masks)
    label = np.argmax(stack, axis=0).astype(np.uint8) + 1
    label[stack.max(axis=0) == 0] = 0
    return label


def polygons(label, index, min_size):
    """Outer contours of one class with area >= min_size."""
    binary = (label == index).astype(np.uint8)
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    return [c.reshape(-1, 2) for c in contours
            if cv2.contourArea(c) >= min_size]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--slide", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--model", action="append", default=[],
                        help="Class=path.ckpt, once per class")
    parser.add_argument("--out", help="folder for <Class>.mask.npy")
    parser.add_argument("--polygons",
                        help="JSON file for the polygons, level-0 pixels")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x, y, w, h = (int(v) for v in args.region.split(","))
    models = dict(m.split("=", 1) for m in args.model)
    names = [c for c in CLASSES if c in models]

    start = time.monotonic()
    rgb = read_region(args.slide, x, y, w, h)
    masks = [class_mask(unet.load_ckpt(models[c]), rgb, CLASSES[c][3])
             for c in names]
    label = combine(masks)
    counts, shapes = {}, {}
    for i, c in enumerate(names):
        polys = polygons(label, i + 1, CLASSES[c][2])
        counts[c] = len(polys)
        shapes[c] = [(p + [x, y]).tolist() for p in polys]
    seconds = time.monotonic() - start

    if args.out:
        os.makedirs(args.out, exist_ok=True)
        for i, c in enumerate(names):
            np.save(os.path.join(args.out, f"{c}.mask.npy"),
                    (label == i + 1).astype(np.uint8))
    if args.polygons:
        with open(args.polygons, "w") as out:
            json.dump(shapes, out)
    print(json.dumps({"seconds": seconds, "polygons": counts}))


if __name__ == "__main__":
    main()
