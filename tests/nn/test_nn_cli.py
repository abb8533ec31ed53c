"""The network's commands through the real binary: import-model, nn-eval.

Standard library only; torch (Debian's python3-torch) is used where a
checkpoint must be made and the tests needing it skip without it.
"""
import array
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import unittest
import zipfile

from aapi_server import run_aapi, shared_path

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = "fixtures/unet/unet_d3_wf3_bn_upconv"


def read_floats(path):
    values = array.array("f")
    with open(path, "rb") as f:
        values.frombytes(f.read())
    if sys.byteorder != "little":
        values.byteswap()
    return values


def max_diff(a, b):
    assert len(a) == len(b), (len(a), len(b))
    return max(abs(x - y) for x, y in zip(a, b))


class Payload:
    """Runs a shell command when unpickled: must never happen."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class AttributeDict(dict):
    """Like Lightning's hparams container: a dict subclass."""


def unet_shapes(in_channels, n_classes, depth, wf):
    """State-dict names and shapes of an upconv U-Net without batch
    norm, as PyTorch names them."""
    shapes, prev = [], in_channels
    for i in range(depth):
        c = 2 ** (wf + i)
        shapes += [(f"down_path.{i}.block.0.weight", (c, prev, 3, 3)),
                   (f"down_path.{i}.block.0.bias", (c,)),
                   (f"down_path.{i}.block.2.weight", (c, c, 3, 3)),
                   (f"down_path.{i}.block.2.bias", (c,))]
        prev = c
    for j, i in enumerate(reversed(range(depth - 1))):
        c = 2 ** (wf + i)
        shapes += [(f"up_path.{j}.up.weight", (prev, c, 2, 2)),
                   (f"up_path.{j}.up.bias", (c,)),
                   (f"up_path.{j}.conv_block.block.0.weight",
                    (c, prev, 3, 3)),
                   (f"up_path.{j}.conv_block.block.0.bias", (c,)),
                   (f"up_path.{j}.conv_block.block.2.weight",
                    (c, c, 3, 3)),
                   (f"up_path.{j}.conv_block.block.2.bias", (c,))]
        prev = c
    shapes += [("last.weight", (n_classes, prev, 1, 1)),
               ("last.bias", (n_classes,))]
    return shapes


def write_checkpoint(path, **hparams):
    """A Lightning-style checkpoint written without torch: the pickle
    opcodes torch.save emits for {state_dict, hyper_parameters}, small
    random weights in data/<key>."""
    def text(value):
        data = value.encode()
        return b"X" + struct.pack("<I", len(data)) + data

    def ints(values):
        return b"(" + b"".join(b"J" + struct.pack("<i", v)
                               for v in values) + b"t"

    hp = dict(in_channels=3, n_classes=2, depth=2, wf=2, padding=True,
              batch_norm=False, up_mode="upconv")
    hp.update(hparams)
    rng = random.Random(3)
    storages, pkl = {}, [b"\x80\x02}(", text("state_dict"),
                         b"ccollections\nOrderedDict\n)R("]
    for key, (name, shape) in enumerate(
            unet_shapes(hp["in_channels"], hp["n_classes"], hp["depth"],
                        hp["wf"])):
        count = 1
        for d in shape:
            count *= d
        strides = [1] * len(shape)
        for k in range(len(shape) - 2, -1, -1):
            strides[k] = strides[k + 1] * shape[k + 1]
        storages[str(key)] = struct.pack(
            f"<{count}f", *(rng.uniform(-0.1, 0.1) for _ in range(count)))
        pkl += [text(name), b"ctorch._utils\n_rebuild_tensor_v2\n(",
                b"(", text("storage"), b"ctorch\nFloatStorage\n",
                text(str(key)), text("cpu"), b"J" + struct.pack("<i", count),
                b"tQ", b"J\x00\x00\x00\x00", ints(shape), ints(strides),
                b"\x89ccollections\nOrderedDict\n)Rt", b"R"]
    pkl += [b"u", text("hyper_parameters"), b"}("]
    for k, v in hp.items():
        pkl.append(text(k))
        if isinstance(v, bool):
            pkl.append(b"\x88" if v else b"\x89")
        elif isinstance(v, int):
            pkl.append(b"J" + struct.pack("<i", v))
        else:
            pkl.append(text(v))
    pkl += [b"uu."]
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", b"".join(pkl))
        for key, data in storages.items():
            z.writestr(f"archive/data/{key}", data)


class NnCliTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="aapi-nn-cli-")
        self.models = os.path.join(self.tmp, "model")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def eval(self, model, inp, shape, check=True, timeout=600):
        out = os.path.join(self.tmp, "out.bin")
        result = run_aapi(["nn-eval", "--model", model, "--input", inp,
                           "--shape", shape, "--output", out], check=check,
                          timeout=timeout)
        return result, out

    def fifo_with(self, data):
        """A FIFO that a thread fills with data and then closes."""
        path = os.path.join(self.tmp, f"fifo-{len(data)}")
        os.mkfifo(path)

        def write():
            try:
                with open(path, "wb") as f:
                    f.write(data)
            except BrokenPipeError:
                pass  # the reader stops at the size it needs

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        return path, writer

    def test_eval_checkpoint_and_imported(self):
        case = shared_path(FIXTURE)
        ckpt = os.path.join(case, "model.ckpt")
        inp = os.path.join(case, "input.bin")
        expect = read_floats(os.path.join(case, "eval_logits.bin"))

        result, out = self.eval(ckpt, inp, "2,3,64,64")
        self.assertEqual(result.stdout.strip(), "2,2,64,64")
        self.assertLessEqual(max_diff(read_floats(out), expect), 1e-4)

        result = run_aapi(["import-model", ckpt, "--class", "Glomerulus",
                           "--model-dir", self.models])
        folder = os.path.join(self.models, "Glomerulus")
        names = os.listdir(folder)
        self.assertEqual(len(names), 1)
        self.assertTrue(names[0].endswith(".aapimodel"), names)
        native = os.path.join(folder, names[0])
        self.assertIn(native, result.stdout)

        _, out = self.eval(native, inp, "2,3,64,64")
        self.assertLessEqual(max_diff(read_floats(out), expect), 1e-4)

        # A second import sorts after the first: it is the newest.
        run_aapi(["import-model", ckpt, "--class", "Glomerulus",
                  "--model-dir", self.models])
        second = sorted(os.listdir(folder))
        self.assertEqual(len(second), 2)
        self.assertEqual(second[0], names[0])

    def test_import_errors(self):
        case = shared_path(FIXTURE)
        ckpt = os.path.join(case, "model.ckpt")
        result = run_aapi(["import-model", ckpt, "--class", "NoSuchClass",
                           "--model-dir", self.models], check=False)
        self.assertEqual(result.returncode, 1)
        self.assertIn("unknown class", result.stderr)

        bogus = os.path.join(self.tmp, "bogus.ckpt")
        with open(bogus, "wb") as f:
            f.write(b"\x00" * 100)
        result = run_aapi(["import-model", bogus, "--class", "Glomerulus",
                           "--model-dir", self.models], check=False)
        self.assertEqual(result.returncode, 1)
        self.assertIn("not a checkpoint", result.stderr)
        self.assertFalse(os.path.exists(self.models))

        result = run_aapi(["import-model", "--class", "Glomerulus"],
                          check=False)
        self.assertEqual(result.returncode, 2)

    def test_import_refuses_unfit_class_models(self):
        """Models a class cannot serve are refused, nothing written: the
        server would skip them, a prediction could not run them."""
        good = os.path.join(self.tmp, "good.ckpt")
        write_checkpoint(good)
        run_aapi(["import-model", good, "--class", "Artery",
                  "--model-dir", self.models])
        for hp, text in [(dict(n_classes=5), "2 outputs"),
                         (dict(n_classes=1), "2 outputs"),
                         (dict(in_channels=4), "3 input channels"),
                         (dict(in_channels=1), "3 input channels"),
                         (dict(padding=False), "padding")]:
            ckpt = os.path.join(self.tmp, "unfit.ckpt")
            write_checkpoint(ckpt, **hp)
            result = run_aapi(["import-model", ckpt, "--class", "Tubules",
                               "--model-dir", self.models], check=False)
            self.assertEqual(result.returncode, 1, (hp, result.stderr))
            self.assertIn(text, result.stderr, hp)
            self.assertIn("cannot serve class Tubules", result.stderr)
            self.assertFalse(os.path.exists(
                os.path.join(self.models, "Tubules")), hp)

    def test_eval_shape_errors(self):
        case = shared_path(FIXTURE)
        ckpt = os.path.join(case, "model.ckpt")
        inp = os.path.join(case, "input.bin")
        for shape, text in [("2,3,64,65", "bytes"),
                            ("2,4,64,64", "input channels"),
                            ("2,3,64", "N,C,H,W"),
                            ("2,3,-64,64", "-64"),
                            ("1,3,2,2", "does not fit")]:
            result, _ = self.eval(ckpt, inp, shape, check=False)
            self.assertEqual(result.returncode, 1, shape)
            self.assertIn(text, result.stderr, shape)
        out = os.path.join(self.tmp, "out.bin")
        for repeat in ["0", "-1", "1001"]:
            result = run_aapi(["nn-eval", "--model", ckpt, "--input", inp,
                               "--shape", "2,3,64,64", "--output", out,
                               "--repeat", repeat], check=False)
            self.assertEqual(result.returncode, 2, repeat)
            self.assertIn("--repeat is 1 to 1000", result.stderr, repeat)

    def test_eval_input_read_only_as_far_as_needed(self):
        # 2*3*48*40 float32 values: 46080 bytes.  An endless device or a
        # pipe is read no further than one byte past that, so a wrong
        # input fails at once instead of filling the memory.
        ckpt = os.path.join(shared_path(FIXTURE), "model.ckpt")
        short = os.path.join(self.tmp, "short.bin")
        with open(short, "wb") as f:
            f.write(b"\0" * 46079)
        cases = [("/dev/zero", "has more than 46080 bytes"),
                 (short, "has 46079 bytes"),
                 (self.fifo_with(b"\0" * 100)[0], "has 100 bytes"),
                 (self.fifo_with(b"\0" * 50000)[0],
                  "has more than 46080 bytes")]
        for inp, text in cases:
            result, out = self.eval(ckpt, inp, "2,3,48,40", check=False,
                                    timeout=60)
            self.assertEqual(result.returncode, 1, inp)
            self.assertIn(text, result.stderr, inp)
            self.assertIn("the shape needs 46080", result.stderr, inp)
            self.assertFalse(os.path.exists(out), inp)

        result, _ = self.eval(ckpt, os.path.join(self.tmp, "absent.bin"),
                              "2,3,48,40", check=False, timeout=60)
        self.assertEqual(result.returncode, 1)
        self.assertIn("No such file", result.stderr)

    def torch_or_skip(self):
        try:
            import torch  # noqa: F401
        except ImportError:
            self.skipTest("torch is not installed (python3-torch)")
        sys.path.insert(0, HERE)
        import make_unet_case
        return make_unet_case

    def test_native_file_back_to_checkpoint(self):
        """bench/predict/aapimodel.py turns a native file into a
        checkpoint that gives the fixture's logits (the benchmark runs
        models aapi trained through PyTorch with it)."""
        self.torch_or_skip()
        case = shared_path(FIXTURE)
        run_aapi(["import-model", os.path.join(case, "model.ckpt"),
                  "--class", "Glomerulus", "--model-dir", self.models])
        folder = os.path.join(self.models, "Glomerulus")
        native = os.path.join(folder, os.listdir(folder)[0])
        back = os.path.join(self.tmp, "back.ckpt")
        tool = os.path.join(HERE, "..", "..", "bench", "predict",
                            "aapimodel.py")
        subprocess.run([sys.executable, tool, native, back], check=True)
        _, out = self.eval(back, os.path.join(case, "input.bin"),
                           "2,3,64,64")
        expect = read_floats(os.path.join(case, "eval_logits.bin"))
        self.assertLessEqual(max_diff(read_floats(out), expect), 1e-4)

        # A damaged file is refused, not half read.
        with open(native, "rb") as f:
            data = bytearray(f.read())
        data[100] ^= 1
        with open(native, "wb") as f:
            f.write(data)
        bad = subprocess.run([sys.executable, tool, native, back],
                             capture_output=True, text=True)
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("not an intact .aapimodel", bad.stderr)

    def test_unknown_objects_skipped_not_run(self):
        cases = self.torch_or_skip()
        import torch
        marker = os.path.join(self.tmp, "pwned")
        model = cases.UNet(in_channels=3, n_classes=2, depth=2, wf=2,
                           padding=True, batch_norm=True)
        hp = dict(in_channels=3, n_classes=2, depth=2, wf=2, padding=True,
                  batch_norm=True, up_mode="upconv",
                  callback=Payload(marker))
        ckpt = os.path.join(self.tmp, "payload.ckpt")
        torch.save({"state_dict": model.state_dict(),
                    "hyper_parameters": hp, "extra": Payload(marker)}, ckpt)
        run_aapi(["import-model", ckpt, "--class", "Artery",
                  "--model-dir", self.models])
        self.assertFalse(os.path.exists(marker))
        self.assertEqual(len(os.listdir(os.path.join(self.models,
                                                     "Artery"))), 1)

    def test_hparams_in_dict_subclass(self):
        cases = self.torch_or_skip()
        import torch
        model = cases.UNet(in_channels=3, n_classes=2, depth=2, wf=3,
                           padding=True, batch_norm=False,
                           up_mode="upsample")
        hp = AttributeDict(in_channels=3, n_classes=2, depth=2, wf=3,
                           padding=True, batch_norm=False,
                           up_mode="upsample")
        ckpt = os.path.join(self.tmp, "attrdict.ckpt")
        torch.save({"state_dict": model.state_dict(),
                    "hyper_parameters": hp}, ckpt)
        result = run_aapi(["import-model", ckpt, "--class", "Tubules",
                           "--model-dir", self.models])
        self.assertIn("up_mode upsample", result.stdout)

    def test_shape_mismatch_refused(self):
        cases = self.torch_or_skip()
        import torch
        model = cases.UNet(in_channels=3, n_classes=2, depth=2, wf=2,
                           padding=True, batch_norm=False)
        hp = dict(in_channels=3, n_classes=2, depth=2, wf=3, padding=True,
                  batch_norm=False, up_mode="upconv")
        ckpt = os.path.join(self.tmp, "mismatch.ckpt")
        torch.save({"state_dict": model.state_dict(),
                    "hyper_parameters": hp}, ckpt)
        result = run_aapi(["import-model", ckpt, "--class", "Artery",
                           "--model-dir", self.models], check=False)
        self.assertEqual(result.returncode, 1)
        self.assertIn("hyper-parameters imply", result.stderr)

    def test_mutated_pickles_fail_cleanly(self):
        """Damaged data.pkl files: a clear error or a model, never a
        crash."""
        case = shared_path(FIXTURE)
        with zipfile.ZipFile(os.path.join(case, "model.ckpt")) as z:
            entries = {n: z.read(n) for n in z.namelist()}
        pkl = next(n for n in entries if n.endswith("/data.pkl"))
        rng = random.Random(7)
        bad = os.path.join(self.tmp, "mutated.ckpt")
        inp = os.path.join(case, "input.bin")
        for i in range(60):
            data = bytearray(entries[pkl])
            for _ in range(rng.randint(1, 4)):
                pos = rng.randrange(len(data))
                if rng.random() < 0.7:
                    data[pos] = rng.randrange(256)
                else:
                    del data[pos:pos + rng.randint(1, 40)]
            with zipfile.ZipFile(bad, "w") as z:
                for name, blob in entries.items():
                    z.writestr(name, bytes(data) if name == pkl else blob)
            result, _ = self.eval(bad, inp, "2,3,64,64", check=False)
            self.assertIn(result.returncode, (0, 1),
                          f"mutation {i}: {result.stderr}")
            if result.returncode:
                self.assertIn("aapi nn-eval:", result.stderr)


if __name__ == "__main__":
    unittest.main()
