#!/usr/bin/python3
"""Writes the expected outputs of the infer unit-test cases with OpenCV,
the library the old pipeline used (Debian's python3-opencv).

tests/cases/infer-<condition>/ gets input.png and, per case kind:
  resize: expected-<w>x<h>.png (cv2.resize INTER_CUBIC)
  open:   expected.png (cv2.morphologyEx MORPH_OPEN, 7x7, iterations=3)
  contours: contours.txt, one line per outer contour, "area points"
Rerun only to add cases; the outputs are committed.
"""
import os

import cv2
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = os.path.join(HERE, "..", "cases")


def case_dir(name):
    path = os.path.join(CASES, "infer-" + name)
    os.makedirs(path, exist_ok=True)
    return path


def blobs(seed, w, h, n, rmax, noise=0.02):
    rng = np.random.default_rng(seed)
    mask = np.zeros((h, w), np.uint8)
    for _ in range(n):
        cx, cy = rng.integers(0, w), rng.integers(0, h)
        ax, ay = rng.integers(2, rmax, 2)
        cv2.ellipse(mask, (int(cx), int(cy)), (int(ax), int(ay)),
                    float(rng.integers(0, 180)), 0, 360, 1, -1)
    holes = rng.random((h, w)) < noise
    mask[holes] = 0
    return mask


def resize_case(name, seed, w, h, sizes, blur=3):
    path = case_dir(name)
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    img = cv2.GaussianBlur(img, (blur, blur), 0)
    cv2.imwrite(os.path.join(path, "input.png"), img[:, :, ::-1])
    for dw, dh in sizes:
        out = cv2.resize(img, (dw, dh), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(os.path.join(path, f"expected-{dw}x{dh}.png"),
                    out[:, :, ::-1])


def open_case(name, mask):
    path = case_dir(name)
    cv2.imwrite(os.path.join(path, "input.png"), mask * 255)
    out = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((7, 7), np.uint8),
                           iterations=3)
    cv2.imwrite(os.path.join(path, "expected.png"), out * 255)


def contour_case(name, mask):
    path = case_dir(name)
    cv2.imwrite(os.path.join(path, "input.png"), mask * 255)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    with open(os.path.join(path, "contours.txt"), "w") as out:
        for c in sorted(contours, key=cv2.contourArea):
            out.write(f"{cv2.contourArea(c):.1f} {len(c)}\n")


def main():
    resize_case("resize-cubic", 1, 203, 157,
                [(51, 39), (25, 20), (331, 211), (203, 157)])
    # Large enough for OpenCV's float vertical pass to round differently
    # from its integer one at some pixels, as on real regions.
    # (smooth, so that its PNG stays small).
    resize_case("resize-cubic-large", 2, 640, 480, [(160, 120), (80, 60)],
                blur=31)
    open_case("open-blobs", blobs(2, 240, 180, 25, 30, 0.0005))
    contour_case("contours-blobs", blobs(3, 300, 200, 60, 25))
    ring = np.zeros((40, 40), np.uint8)
    cv2.circle(ring, (20, 20), 15, 1, -1)
    cv2.circle(ring, (20, 20), 8, 0, -1)
    ring[18:23, 18:23] = 1
    contour_case("contours-island", ring)
    edge = np.zeros((20, 30), np.uint8)
    edge[0:5, :] = 1
    edge[10:20, 25:30] = 1
    edge[15, 5] = 1
    edge[8:12, 10] = 1
    contour_case("contours-edges", edge)


if __name__ == "__main__":
    main()
