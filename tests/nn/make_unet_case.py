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

try:
    import torch
    from torch import nn
    import torch.nn.functional as F
except ImportError:
    print("torch is not installed (Debian: python3-torch)", file=sys.stderr)
    sys.exit(77)


class ConvBlock(nn.Module):
    """Two 3x3 convolutions, each followed by ReLU, then batch norm."""

    def __init__(self, in_size, out_size, padding, batch_norm):
        super().__init__()
        layers = []
        for i in range(2):
            layers.append(nn.Conv2d(in_size if i == 0 else out_size,
                                    out_size, kernel_size=3,
                                    padding=int(padding)))
            layers.append(nn.ReLU())
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_size))
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        return self.block(x)


class UpBlock(nn.Module):
    """Up-sampling, centre-cropped skip concatenated after it, convs."""

    def __init__(self, in_size, out_size, up_mode, padding, batch_norm):
        super().__init__()
        if up_mode == "upconv":
            self.up = nn.ConvTranspose2d(in_size, out_size, kernel_size=2,
                                         stride=2)
        else:
            self.up = nn.Sequential(
                nn.Upsample(mode="bilinear", scale_factor=2,
                            align_corners=False),
                nn.Conv2d(in_size, out_size, kernel_size=1))
        self.conv_block = ConvBlock(in_size, out_size, padding, batch_norm)

    @staticmethod
    def centre_crop(layer, size):
        dy = (layer.shape[2] - size[0]) // 2
        dx = (layer.shape[3] - size[1]) // 2
        return layer[:, :, dy:dy + size[0], dx:dx + size[1]]

    def forward(self, x, bridge):
        up = self.up(x)
        crop = self.centre_crop(bridge, up.shape[2:])
        return self.conv_block(torch.cat([up, crop], 1))


class UNet(nn.Module):
    """The family of DESIGN.md section 1, average pooling going down."""

    def __init__(self, in_channels=1, n_classes=2, depth=5, wf=6,
                 padding=False, batch_norm=False, up_mode="upconv"):
        super().__init__()
        prev = in_channels
        self.down_path = nn.ModuleList()
        for i in range(depth):
            self.down_path.append(ConvBlock(prev, 2 ** (wf + i), padding,
                                            batch_norm))
            prev = 2 ** (wf + i)
        self.up_path = nn.ModuleList()
        for i in reversed(range(depth - 1)):
            self.up_path.append(UpBlock(prev, 2 ** (wf + i), up_mode,
                                        padding, batch_norm))
            prev = 2 ** (wf + i)
        self.last = nn.Conv2d(prev, n_classes, kernel_size=1)

    def forward(self, x):
        skips = []
        for i, down in enumerate(self.down_path):
            x = down(x)
            if i != len(self.down_path) - 1:
                skips.append(x)
                x = F.avg_pool2d(x, 2)
        for i, up in enumerate(self.up_path):
            x = up(x, skips[-i - 1])
        return self.last(x)


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
