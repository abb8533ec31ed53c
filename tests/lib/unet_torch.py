"""The U-Net family of DESIGN.md in PyTorch: the one definition that the
nn and nn-train case makers and the benchmarks' baselines share.

Average pooling going down; the skip is centre-cropped and concatenated
after the up-sampling.  Parameter names follow the old service's checkpoints
(down_path.0.block.0.weight, up_path.1.up.weight, last.bias).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class ConvBlock(nn.Module):
    def __init__(self, in_size, out_size, padding, batch_norm):
        super().__init__()
        layers = [nn.Conv2d(in_size, out_size, 3, padding=int(padding)),
                  nn.ReLU()]
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_size))
        layers += [nn.Conv2d(out_size, out_size, 3, padding=int(padding)),
                   nn.ReLU()]
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_size))
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        return self.block(x)


class UpBlock(nn.Module):
    def __init__(self, in_size, out_size, up_mode, padding, batch_norm):
        super().__init__()
        if up_mode == "upconv":
            self.up = nn.ConvTranspose2d(in_size, out_size, 2, stride=2)
        else:
            self.up = nn.Sequential(
                nn.Upsample(mode="bilinear", scale_factor=2,
                            align_corners=False),
                nn.Conv2d(in_size, out_size, 1))
        self.conv_block = ConvBlock(in_size, out_size, padding, batch_norm)

    def forward(self, x, bridge):
        up = self.up(x)
        dy = (bridge.shape[2] - up.shape[2]) // 2
        dx = (bridge.shape[3] - up.shape[3]) // 2
        crop = bridge[:, :, dy:dy + up.shape[2], dx:dx + up.shape[3]]
        return self.conv_block(torch.cat([up, crop], 1))


class UNet(nn.Module):
    def __init__(self, in_channels=3, n_classes=2, depth=5, wf=4,
                 padding=True, batch_norm=True, up_mode="upconv"):
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
        self.last = nn.Conv2d(prev, n_classes, 1)

    def forward(self, x):
        bridges = []
        for i, down in enumerate(self.down_path):
            x = down(x)
            if i != len(self.down_path) - 1:
                bridges.append(x)
                x = F.avg_pool2d(x, 2)
        for i, up in enumerate(self.up_path):
            x = up(x, bridges[-i - 1])
        return self.last(x)


HPARAM_KEYS = ("in_channels", "n_classes", "depth", "wf", "padding",
               "batch_norm", "up_mode")


def load_ckpt(path):
    """Builds the net from a Lightning checkpoint's hyper_parameters and
    loads its state_dict (eval mode)."""
    ckpt = torch.load(path, map_location="cpu")
    hp = {k: ckpt["hyper_parameters"][k] for k in HPARAM_KEYS
          if k in ckpt["hyper_parameters"]}
    net = UNet(**hp)
    state = {k[len("model."):] if k.startswith("model.") else k: v
             for k, v in ckpt["state_dict"].items()}
    net.load_state_dict(state)
    net.eval()
    return net


def save_ckpt(net, hparams, path):
    """Writes a Lightning-style checkpoint (state_dict + hyper_parameters)."""
    torch.save({"state_dict": net.state_dict(),
                "hyper_parameters": dict(hparams),
                "pytorch-lightning_version": "1.5.0",
                "epoch": 0, "global_step": 0}, path)
