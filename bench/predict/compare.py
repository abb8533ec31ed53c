#!/usr/bin/python3
"""Compares aapi's predicted polygons (GeoJSON from `aapi predict`) with
the reference pipeline's (reference.py --polygons) on one region: per
class the pixel IoU of the filled polygons and the polygon counts.

Usage: compare.py --region x,y,w,h AAPI.geojson REFERENCE.json
(either file may also be the other kind: two reference runs compare too).
Prints JSON {"Class": {"iou": .., "aapi": n, "reference": n}}.
"""
import argparse
import json

import cv2
import numpy as np


def fill(polys, x, y, w, h):
    mask = np.zeros((h, w), np.uint8)
    for p in polys:
        pts = np.round(np.asarray(p, np.float64) - [x, y]).astype(np.int32)
        cv2.fillPoly(mask, [pts], 1)
    return mask


def polygons(path):
    """Polygons per class of aapi's GeoJSON or of reference.py's JSON."""
    data = json.load(open(path))
    if "features" not in data:
        return data
    shapes = {}
    for f in data["features"]:
        name = f["properties"]["classification"]["name"]
        shapes.setdefault(name, []).append(f["geometry"]["coordinates"][0])
    return shapes


def compare(region, aapi, reference):
    x, y, w, h = region
    out = {}
    for name in sorted(set(aapi) | set(reference)):
        a = fill(aapi.get(name, []), x, y, w, h)
        b = fill(reference.get(name, []), x, y, w, h)
        union = int((a | b).sum())
        iou = 1.0 if union == 0 else float((a & b).sum()) / union
        out[name] = {"iou": round(iou, 4), "aapi": len(aapi.get(name, [])),
                     "reference": len(reference.get(name, [])),
                     "pixels": int(b.sum())}
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--region", required=True)
    parser.add_argument("aapi")
    parser.add_argument("reference")
    args = parser.parse_args()
    region = [int(v) for v in args.region.split(",")]
    print(json.dumps(compare(region, polygons(args.aapi),
                             polygons(args.reference))))


if __name__ == "__main__":
    main()
