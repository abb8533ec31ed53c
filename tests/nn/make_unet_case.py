#!/usr/bin/python3
"""Makes U-Net parity cases with PyTorch for the nn tests.

Usage: make_unet_case.py OUTDIR [NAME ...]

Each case is a folder OUTDIR/<name>/ with model.ckpt (a Lightning-style
checkpoint: torch.save of {state_dict, hyper_parameters}, the latter also
holding a pickled optimizer factory as the old service's did), input.bin,
eval_logits.bin (eval mode) and manifest.json, like the shared fixtures.
Exits with 77 when torch is not installed (the test then skips).
"""
import functools
import json
import os
import sys

# The shared U-Net lives in tests/lib, which is on PYTHONPATH under meson
# but not when a benchmark runs this file directly.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
try:
    import torch
    from torch import nn
    from unet_torch import UNet
except ImportError:
    print("torch is not installed (Debian: python3-torch)", file=sys.stderr)
    sys.exit(77)


# name: hyper-parameters and input shape (odd sizes where valid).
CASES = {
    "d4_wf3_bn_upconv": (dict(depth=4, wf=3, padding=True, batch_norm=True,
                              up_mode="upconv"), (1, 3, 64, 48)),
    "d5_wf4_bn_upconv": (dict(depth=5, wf=4, padding=True, batch_norm=True,
                              up_mode="upconv"), (1, 3, 48, 64)),
    "d4_wf3_nopad_bn_upconv": (dict(depth=4, wf=3, padding=False,
                                    batch_norm=True, up_mode="upconv"),
                               (2, 3, 97, 93)),
    "d3_wf3_bn_upsample": (dict(depth=3, wf=3, padding=True,
                                batch_norm=True, up_mode="upsample"),
                           (1, 3, 40, 56)),
    "d3_wf2_nopad_upsample": (dict(depth=3, wf=2, padding=False,
                                   batch_norm=False, up_mode="upsample"),
                              (1, 3, 45, 51)),
    "d3_wf3_bn_upconv_odd": (dict(depth=3, wf=3, padding=True,
                                  batch_norm=True, up_mode="upconv"),
                             (2, 3, 37, 45)),
    "d4_wf4_upconv_nobn": (dict(depth=4, wf=4, padding=True,
                                batch_norm=False, up_mode="upconv"),
                           (1, 3, 32, 40)),
}


def randomise_batch_norm(model, gen):
    """Makes eval-mode batch norm differ from the identity."""
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            c = module.num_features
            module.weight.data = 0.5 + torch.rand(c, generator=gen)
            module.bias.data = torch.randn(c, generator=gen) * 0.2
            module.running_mean = torch.randn(c, generator=gen) * 0.2
            module.running_var = 0.5 + torch.rand(c, generator=gen)
            module.num_batches_tracked.fill_(7)


def make_case(outdir, name, hparams, shape, seed):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    full = dict(in_channels=3, n_classes=2, **hparams)
    model = UNet(**full)
    randomise_batch_norm(model, gen)
    model.eval()
    x = torch.randn(*shape, generator=gen)
    with torch.no_grad():
        logits = model(x)

    folder = os.path.join(outdir, name)
    os.makedirs(folder, exist_ok=True)
    stored = dict(full)
    stored["optimizer"] = functools.partial(torch.optim.Adam, lr=1e-3)
    torch.save({"epoch": 1, "global_step": 10, "state_dict":
                model.state_dict(), "hyper_parameters": stored},
               os.path.join(folder, "model.ckpt"))
    x.numpy().astype("<f4").tofile(os.path.join(folder, "input.bin"))
    logits.numpy().astype("<f4").tofile(
        os.path.join(folder, "eval_logits.bin"))
    manifest = {
        "hyper_parameters": full,
        "tensors": {
            "input": {"dtype": "float32", "shape": list(x.shape)},
            "eval_logits": {"dtype": "float32",
                            "shape": list(logits.shape)},
        },
        "state_dict": list(model.state_dict().keys()),
    }
    with open(os.path.join(folder, "manifest.json"), "w") as out:
        json.dump(manifest, out, indent=1)


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    names = sys.argv[2:] or list(CASES)
    for seed, name in enumerate(names):
        hparams, shape = CASES[name]
        make_case(sys.argv[1], name, hparams, shape, 1000 + seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
