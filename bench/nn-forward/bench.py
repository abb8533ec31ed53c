"""aapi's oneDNN forward against PyTorch's on the same U-Net and input.

Called by run.sh: bench.py AAPI_BINARY [SIZE ...].
"""
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "nn"))

import torch  # noqa: E402
import make_unet_case  # noqa: E402

HPARAMS = dict(in_channels=3, n_classes=2, depth=5, wf=4, padding=True,
               batch_norm=True, up_mode="upconv")
REPEAT = int(os.environ.get("REPEAT", "5"))


def conv_flops(cin, cout, k, h, w):
    return 2 * cin * cout * k * k * h * w


def unet_gflop(hp, h, w):
    """Multiply-adds x2 of the convolutions (padding on, sizes / 2^i)."""
    total, prev = 0, hp["in_channels"]
    for i in range(hp["depth"]):
        c, s = 2 ** (hp["wf"] + i), 2 ** i
        total += conv_flops(prev, c, 3, h // s, w // s)
        total += conv_flops(c, c, 3, h // s, w // s)
        prev = c
    for i in reversed(range(hp["depth"] - 1)):
        c, s = 2 ** (hp["wf"] + i), 2 ** i
        total += conv_flops(prev, c, 2, h // s // 2, w // s // 2)
        total += conv_flops(2 * c, c, 3, h // s, w // s)
        total += conv_flops(c, c, 3, h // s, w // s)
        prev = c
    total += conv_flops(prev, hp["n_classes"], 1, h, w)
    return total / 1e9


def torch_ms(model, x):
    times = []
    with torch.no_grad():
        model(x)
        for _ in range(REPEAT):
            start = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def aapi_ms(binary, ckpt, inp, size, out):
    result = subprocess.run(
        [binary, "nn-eval", "--model", ckpt, "--input", inp, "--shape",
         f"1,3,{size},{size}", "--output", out, "--repeat",
         str(REPEAT + 1)], capture_output=True, text=True, check=True)
    match = re.search(r"median ([0-9.]+)", result.stderr)
    return float(match.group(1))


def main():
    binary = sys.argv[1]
    sizes = [int(s) for s in sys.argv[2:]] or [256, 512, 1024]
    threads = int(os.environ.get("OMP_NUM_THREADS", os.cpu_count()))
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = make_unet_case.UNet(**HPARAMS)
    make_unet_case.randomise_batch_norm(model, torch.Generator())
    model.eval()
    print(f"U-Net depth 5, wf 4, batch norm, upconv; {threads} threads; "
          f"median of {REPEAT}; torch {torch.__version__}")
    print(f"{'input':>16} {'GFLOP':>7} {'aapi ms':>9} {'torch ms':>9} "
          f"{'aapi GF/s':>9} {'torch GF/s':>10} {'speed-up':>8}")
    with tempfile.TemporaryDirectory(prefix="aapi-bench-nn-") as tmp:
        ckpt = os.path.join(tmp, "model.ckpt")
        torch.save({"state_dict": model.state_dict(),
                    "hyper_parameters": HPARAMS}, ckpt)
        for size in sizes:
            x = torch.randn(1, 3, size, size)
            inp = os.path.join(tmp, "in.bin")
            out = os.path.join(tmp, "out.bin")
            x.numpy().astype("<f4").tofile(inp)
            a = aapi_ms(binary, ckpt, inp, size, out)
            t = torch_ms(model, x)
            with torch.no_grad():
                ref = model(x)
            got = torch.from_file(out, size=ref.numel()).view_as(ref)
            diff = (got - ref).abs().max().item()
            g = unet_gflop(HPARAMS, size, size)
            print(f"{'1x3x%dx%d' % (size, size):>16} {g:7.2f} {a:9.1f} "
                  f"{t:9.1f} {g / a * 1e3:9.1f} {g / t * 1e3:10.1f} "
                  f"{t / a:7.2f}x  (max |diff| {diff:.1e})")


if __name__ == "__main__":
    main()
