#!/usr/bin/python3
"""Training throughput of the same U-Net in PyTorch (Debian's python3-torch):
K Adam steps (lr 1e-3, mean cross entropy, train mode) on a random batch.
Usage: train_torch.py STEPS BATCH SIZE THREADS"""
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "tests", "lib"))
from unet_torch import UNet  # noqa: E402


def main():
    steps, n, size, threads = (int(a) for a in sys.argv[1:5])
    torch.set_num_threads(threads)
    torch.manual_seed(7)
    model = UNet(in_channels=3, n_classes=2, depth=5, wf=4, padding=True,
                 batch_norm=True, up_mode="upconv")
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(n, 3, size, size) * 2 - 1
    t = torch.randint(0, 2, (n, size, size))
    total = 0.0
    for k in range(steps + 1):
        start = time.perf_counter()
        opt.zero_grad()
        loss = F.cross_entropy(model(x), t)
        loss.backward()
        opt.step()
        elapsed = time.perf_counter() - start
        if k == 0:
            first = elapsed
        else:
            total += elapsed
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print("torch first_step_s %.3f step_s %.3f patches_per_s %.3f "
          "loss %.5f peak_rss_mb %.0f" % (first, total / steps,
                                          n * steps / total, loss.item(),
                                          rss))


if __name__ == "__main__":
    main()
