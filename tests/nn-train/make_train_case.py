#!/usr/bin/python3
"""Reference training steps from PyTorch for the nn-train tests.

Gives the U-Net family of DESIGN.md (tests/lib/unet_torch.py) seeded
random weights, runs Adam steps (lr 1e-3, mean cross entropy, train mode) and
dumps raw little-endian arrays per case folder:
  manifest.json            hyper-parameters, input shape, steps
  before.<entry>.bin       the state dict before training
  input.bin, target.bin    float32 N,C,H,W and int64 N,H',W'
  loss.bin, train_logits.bin, grad.<param>.bin, after.<entry>.bin
                           the first step
  step<K>.loss.bin, step<K>.after.<entry>.bin
                           after K steps on the same batch

Usage: make_train_case.py OUT_DIR   (exit status 77 when torch is absent)
"""
import json
import os
import sys

# The shared U-Net lives in tests/lib, which is on PYTHONPATH under meson
# but not when a benchmark runs this file directly.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    from unet_torch import UNet
except ImportError:
    print("python3-torch is not installed", file=sys.stderr)
    sys.exit(77)


CASES = {
    "d3_wf2_nopad_upconv": dict(depth=3, wf=2, padding=False,
                                batch_norm=False, up_mode="upconv",
                                shape=(1, 3, 60, 68)),
    "d3_wf3_bn_upsample": dict(depth=3, wf=3, padding=True, batch_norm=True,
                               up_mode="upsample", shape=(2, 3, 32, 48)),
    "d4_wf3_bn_upconv": dict(depth=4, wf=3, padding=True, batch_norm=True,
                             up_mode="upconv", shape=(2, 3, 32, 32)),
    "d2_wf3_nopad_bn_upsample": dict(depth=2, wf=3, padding=False,
                                     batch_norm=True, up_mode="upsample",
                                     shape=(3, 3, 36, 44)),
}
STEPS = 3


def dump(path, tensor):
    tensor.detach().contiguous().cpu().numpy().tofile(path)


def make_case(out, name, spec, seed):
    torch.manual_seed(seed)
    hp = {k: spec[k] for k in ("depth", "wf", "padding", "batch_norm",
                                "up_mode")}
    hp.update(in_channels=3, n_classes=2)
    model = UNet(**hp)
    # Batch norm starts away from its defaults so that they are tested.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    folder = os.path.join(out, name)
    os.makedirs(folder, exist_ok=True)
    for key, value in model.state_dict().items():
        dump(os.path.join(folder, "before.%s.bin" % key), value)

    x = torch.randn(*spec["shape"])
    # Output size from an eval-mode probe, which leaves the statistics.
    model.eval()
    with torch.no_grad():
        oh, ow = model(x).shape[2:]
    model.train()
    target = torch.randint(0, 2, (spec["shape"][0], oh, ow))
    dump(os.path.join(folder, "input.bin"), x)
    dump(os.path.join(folder, "target.bin"), target)

    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for step in range(1, STEPS + 1):
        opt.zero_grad()
        logits = model(x)
        loss = F.cross_entropy(logits, target)
        loss.backward()
        opt.step()
        prefix = "" if step == 1 else "step%d." % step
        if step == 1:
            dump(os.path.join(folder, "train_logits.bin"), logits)
            for key, p in model.named_parameters():
                dump(os.path.join(folder, "grad.%s.bin" % key), p.grad)
        if step in (1, STEPS):
            dump(os.path.join(folder, prefix + "loss.bin"), loss.reshape(1))
            for key, value in model.state_dict().items():
                dump(os.path.join(folder, prefix + "after.%s.bin" % key),
                     value)

    manifest = {
        "hyper_parameters": hp,
        "tensors": {"input": {"dtype": "float32",
                              "shape": list(spec["shape"])}},
        "steps": STEPS,
    }
    with open(os.path.join(folder, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


def main():
    out = sys.argv[1]
    torch.set_num_threads(1)
    for seed, (name, spec) in enumerate(sorted(CASES.items())):
        make_case(out, name, spec, 1000 + seed)
    print("\n".join(sorted(CASES)))


if __name__ == "__main__":
    main()
