"""Region prediction end to end: parity with the reference of the old
pipeline (bench/predict/reference.py, PyTorch + OpenCV) on a region of
kidney_val.svs with small fixed-seed models, the probe verdicts kept in
<data>/model-checks between runs, then the HTTP answers of the predict
routes on a real `aapi serve`.

Needs Debian's python3-torch, python3-opencv and python3-openslide for
the models and the reference; skips with a message without them.
"""
import concurrent.futures
import configparser
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

from aapi_server import AapiServer, run_aapi, shared_path, slide_id

TOP = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
BENCH = os.path.join(TOP, "bench", "predict")
REGION = (500, 6400, 768, 768)
CLASSES = ("Glomerulus", "Tubules")
VERSION = "2026-01-01T00:00:00.ckpt"
PROBE_LINES = ("big tiles agree with the old tiling",
               "int8 agrees with float32")


def need_modules():
    try:
        import cv2  # noqa: F401
        import openslide  # noqa: F401
        import torch  # noqa: F401
    except ImportError as e:
        raise unittest.SkipTest(f"reference modules missing: {e}")
    sys.path.insert(0, BENCH)


def make_models(out):
    """Depth-3 wf-2 models, fixed seeds, last layer fitted to the
    training slide's annotations (bench/predict/make_models.py)."""
    subprocess.run(
        ["/usr/bin/python3", os.path.join(BENCH, "make_models.py"),
         "--slide", shared_path("data/slides/kidney_train.svs"),
         "--annotations", shared_path("data/slides/kidney_train.xml"),
         "--out", out, "--depth", "3", "--wf", "2",
         "--classes", ",".join(CLASSES)], check=True, timeout=600)


class Fixture:
    """Models made once for every test of the file."""
    tmp = None

    @classmethod
    def get(cls):
        if cls.tmp is None:
            need_modules()
            cls.tmp = tempfile.mkdtemp(prefix="aapi-infer-")
            make_models(os.path.join(cls.tmp, "model"))
        return cls.tmp


class TestParity(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.slide = shared_path("data/slides/kidney_val.svs")
        shared_path("data/slides/kidney_train.svs")
        cls.tmp = Fixture.get()
        cls.env = {"AAPI_MODEL_DIR": os.path.join(cls.tmp, "model"),
                   "AAPI_DATA_DIR": os.path.join(cls.tmp, "data")}
        region = ",".join(map(str, REGION))
        cls.reference = os.path.join(cls.tmp, "reference.json")
        models = []
        for name in CLASSES:
            models += ["--model", f"{name}=" + os.path.join(
                cls.tmp, "model", name, VERSION)]
        subprocess.run(
            ["/usr/bin/python3", os.path.join(BENCH, "reference.py"),
             "--slide", cls.slide, "--region", region,
             "--polygons", cls.reference] + models,
            check=True, timeout=600, capture_output=True)

    def predict(self, *extra):
        region = ",".join(map(str, REGION))
        result = run_aapi(["predict", "--slide-file", self.slide,
                           "--region", region, "--format", "geojson"]
                          + list(extra), env=self.env)
        return json.loads(result.stdout)

    def compare(self, document):
        import compare
        shapes = {}
        for f in document["features"]:
            name = f["properties"]["classification"]["name"]
            shapes.setdefault(name, []).append(
                f["geometry"]["coordinates"][0])
        with open(self.reference) as f:
            reference = json.load(f)
        return compare.compare(REGION, shapes, reference)

    def check_parity(self, document):
        scores = self.compare(document)
        for name in CLASSES:
            with self.subTest(cls=name):
                self.assertGreater(scores[name]["reference"], 0,
                                   "the reference found nothing to match")
                self.assertGreaterEqual(scores[name]["iou"], 0.98,
                                        scores)
                self.assertEqual(scores[name]["aapi"],
                                 scores[name]["reference"], scores)

    def test_exact_tiling_matches_reference(self):
        self.check_parity(self.predict("--tiling", "exact"))

    def test_default_tiling_matches_reference(self):
        # The default is the exact tiling: no probe runs.
        result = run_aapi(["predict", "--slide-file", self.slide,
                           "--region", ",".join(map(str, REGION)),
                           "--format", "geojson"], env=self.env)
        for line in PROBE_LINES:
            self.assertNotIn(line, result.stderr)
        self.check_parity(json.loads(result.stdout))

    def test_auto_tiling_matches_reference(self):
        # auto: big tiles only where the probe finds they agree.
        self.check_parity(self.predict("--tiling", "auto"))

    def test_auto_precision_keeps_parity(self):
        # auto tries int8 on a probe window and keeps it only where its
        # mask matches float32's; these models amplify int8's rounding,
        # so the check must fall back and parity must hold.
        # A data dir of its own: no verdict kept by another test.
        env = dict(self.env, AAPI_DATA_DIR=tempfile.mkdtemp(
            prefix="aapi-auto-", dir=self.tmp))
        result = run_aapi(["predict", "--slide-file", self.slide,
                           "--region", ",".join(map(str, REGION)),
                           "--format", "geojson", "--tiling", "exact",
                           "--precision", "auto"], env=env)
        self.assertIn("int8 agrees with float32 at IoU", result.stderr)
        self.check_parity(json.loads(result.stdout))

    def test_forced_int8_answers(self):
        document = self.predict("--tiling", "exact", "--precision", "int8")
        self.assertEqual(document["type"], "FeatureCollection")
        for f in document["features"]:
            self.assertIn(f["properties"]["classification"]["name"],
                          CLASSES)

    def test_forced_bf16_answers_or_says_why(self):
        # bf16 needs AMX or AVX512-BF16; elsewhere the prediction fails
        # with the reason instead of emulating it slowly.
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = f.read()
        region = ",".join(map(str, REGION))
        result = run_aapi(["predict", "--slide-file", self.slide,
                           "--region", region, "--format", "geojson",
                           "--precision", "bf16"], env=self.env,
                          check=False)
        if "avx512_bf16" in flags or "amx_bf16" in flags:
            self.assertEqual(result.returncode, 0, result.stderr)
            document = json.loads(result.stdout)
            self.assertEqual(document["type"], "FeatureCollection")
            names = {f["properties"]["classification"]["name"]
                     for f in document["features"]}
            self.assertLessEqual(names, set(CLASSES))
            self.assertTrue(names, "bf16 found nothing")
        else:
            self.assertNotEqual(result.returncode, 0)
            self.assertIn("no bf16 arithmetic", result.stderr)

    def test_bad_precision_is_refused(self):
        result = run_aapi(["predict", "--slide-file", self.slide,
                           "--region", "0,0,64,64", "--precision", "int4"],
                          env=self.env, check=False)
        self.assertEqual(result.returncode, 2)
        self.assertIn("--precision is auto, int8, f32 or bf16",
                      result.stderr)

    def test_models_member(self):
        document = self.predict()
        self.assertEqual(document["models"]["Glomerulus"], VERSION)
        self.assertIsNone(document["models"]["Artery"])
        for f in document["features"]:
            props = f["properties"]
            self.assertRegex(props["name"], r"^(Glomerulus|Tubules)_\d{3}$")
            self.assertEqual(f["geometry"]["type"], "Polygon")


class TestVerdicts(unittest.TestCase):
    """The tiling and arithmetic verdicts of each model are kept in
    <data>/model-checks/<Class>/<version>.ini: a later run reads them
    instead of probing; a damaged, stale or unwritable file costs only a
    probe and a warning."""

    @classmethod
    def setUpClass(cls):
        cls.slide = shared_path("data/slides/kidney_val.svs")
        cls.tmp = Fixture.get()

    def setUp(self):
        self.data = tempfile.mkdtemp(prefix="aapi-verdict-", dir=self.tmp)
        self.checks = os.path.join(self.data, "model-checks")

    def predict(self):
        return run_aapi(["predict", "--slide-file", self.slide,
                         "--region", ",".join(map(str, REGION)),
                         "--format", "geojson", "--tiling", "auto",
                         "--precision", "auto"],
                        env={"AAPI_MODEL_DIR": os.path.join(self.tmp,
                                                            "model"),
                             "AAPI_DATA_DIR": self.data})

    def ini_path(self, name):
        return os.path.join(self.checks, name, VERSION + ".ini")

    def read_ini(self, name):
        parser = configparser.ConfigParser(interpolation=None)
        with open(self.ini_path(name), encoding="utf-8") as f:
            parser.read_file(f)
        return parser

    def edit_ini(self, name, key, value):
        parser = self.read_ini(name)
        parser["model"][key] = value
        with open(self.ini_path(name), "w", encoding="utf-8") as f:
            parser.write(f)

    def assert_probed(self, result):
        for line in PROBE_LINES:
            self.assertEqual(result.stderr.count(line), len(CLASSES),
                             result.stderr)

    def assert_kept(self, name):
        """The file holds both verdicts, keyed by the model's bytes."""
        model = os.path.join(self.tmp, "model", name, VERSION)
        with open(model, "rb") as f:
            md5 = hashlib.md5(f.read()).hexdigest()
        ini = self.read_ini(name)
        self.assertEqual(ini["model"]["model-md5"], md5)
        self.assertEqual(int(ini["model"]["model-size"]),
                         os.path.getsize(model))
        self.assertEqual(ini["model"]["patch-size"], "256")
        self.assertIn(ini["verdict"]["tiling"], ("fast", "exact"))
        self.assertIn(ini["verdict"]["arith"], ("f32", "int8"))
        ranges = [r for r in ini["verdict"]["ranges"].split(";") if r]
        self.assertGreater(len(ranges), 0)
        self.assertEqual(len(ranges) % 2, 0)

    def test_second_run_reads_the_verdicts(self):
        first = self.predict()
        self.assert_probed(first)
        for name in CLASSES:
            self.assert_kept(name)
        second = self.predict()
        self.assertEqual(second.stderr.count("verdict read from"),
                         len(CLASSES), second.stderr)
        for line in PROBE_LINES:
            self.assertNotIn(line, second.stderr)
        self.assertEqual(second.stdout, first.stdout)

    def test_damaged_and_stale_files_are_rewritten(self):
        first = self.predict()
        # Garbage, a changed model and changed tiling settings.
        cases = (("Glomerulus", None), ("Tubules", "model-size"),
                 ("Glomerulus", "patch-size"))
        for name, key in cases:
            with self.subTest(cls=name, key=key):
                if key is None:
                    with open(self.ini_path(name), "wb") as f:
                        f.write(b"\x00\xff\xfe[[garbage\n=\x80\n")
                else:
                    self.edit_ini(name, key, "512")
                again = self.predict()
                self.assertIn(f"ignoring {self.ini_path(name)}",
                              again.stderr)
                self.assertIn("probing again", again.stderr)
                self.assertEqual(again.stdout, first.stdout)
                self.assert_kept(name)
        self.assertEqual(self.predict().stderr.count("verdict read from"),
                         len(CLASSES))

    def test_calibration_of_another_size_is_dropped(self):
        first = self.predict()
        parser = self.read_ini("Tubules")
        pairs = [r for r in parser["verdict"]["ranges"].split(";") if r]
        parser["verdict"]["ranges"] = ";".join(pairs[:2]) + ";"
        with open(self.ini_path("Tubules"), "w", encoding="utf-8") as f:
            parser.write(f)
        again = self.predict()
        self.assertIn("ignoring its int8 calibration (2 values", again.stderr)
        self.assertEqual(again.stderr.count("int8 agrees with float32"), 1,
                         again.stderr)
        self.assertEqual(again.stdout, first.stdout)
        self.assert_kept("Tubules")
        self.assertEqual(len([r for r in self.read_ini("Tubules")["verdict"]
                              ["ranges"].split(";") if r]), len(pairs))

    def test_unwritable_folder_still_predicts(self):
        first = self.predict()
        # A regular file where the folder should be.
        data = tempfile.mkdtemp(prefix="aapi-verdict-", dir=self.tmp)
        self.data, self.checks = data, os.path.join(data, "model-checks")
        with open(self.checks, "w") as f:
            f.write("not a folder\n")
        blocked = self.predict()
        self.assertEqual(blocked.stdout, first.stdout)
        self.assertEqual(blocked.stderr.count("cannot keep the verdict"),
                         len(CLASSES), blocked.stderr)
        self.assertTrue(os.path.isfile(self.checks))


class TestRoutes(unittest.TestCase):
    """The HTTP answers, with kidney_val registered."""

    @classmethod
    def setUpClass(cls):
        svs = shared_path("data/slides/kidney_val.svs")
        xml = shared_path("data/slides/kidney_val.xml")
        tmp = Fixture.get()
        cls.data = tempfile.mkdtemp(prefix="aapi-infer-http-")
        slides = os.path.join(cls.data, "slides")
        os.makedirs(slides)
        os.symlink(svs, os.path.join(slides, "kidney_val.svs"))
        os.symlink(xml, os.path.join(slides, "kidney_val.xml"))
        cls.slide_id = slide_id(svs)
        cls.env = {"AAPI_MODEL_DIR": os.path.join(tmp, "model"),
                   "AAPI_MAX_PREDICT_PIXELS": "4000000"}

    def server(self, **env):
        full = dict(self.env)
        full.update(env)
        server = AapiServer(data_dir=self.data, env=full)
        server.aapi("init-db")
        server.aapi("init-data", "--slide-dir",
                    os.path.join(self.data, "slides"))
        self.addCleanup(server.stop)
        return server.start()

    def path(self, x, y, w, h, slide=None):
        return (f"/api/v1/slides/{slide or self.slide_id}/predict"
                f"?x={x}&y={y}&width={w}&height={h}")

    def test_answers(self):
        server = self.server(AAPI_PREDICT_WORKERS="2")
        ok = server.get(self.path(*REGION))
        self.assertEqual(ok.status, 200, ok.body)
        self.assertEqual(ok.json()["models"]["Tubules"], VERSION)
        self.assertEqual(server.get(self.path(0, 0, 3000, 3000)).status,
                         413)
        self.assertEqual(server.get(self.path(0, 0, 9, 9, "0" * 32)).status,
                         404)
        for bad in ("?x=1&y=2&width=abc&height=4", "?x=1&y=2&width=3",
                    "?x=-1&y=0&width=5&height=5",
                    "?x=12000&y=0&width=100&height=100", ""):
            with self.subTest(query=bad):
                answer = server.get(
                    f"/api/v1/slides/{self.slide_id}/predict{bad}")
                self.assertEqual(answer.status, 400, answer.body)
        compat = server.get(f"/annotation/{self.slide_id}"
                            "?x=500&y=6400&width=768&height=768")
        self.assertEqual(compat.status, 200)
        self.assertIn(b"<ASAP_Annotations", compat.body)

    def test_concurrent_predictions_agree(self):
        server = self.server(AAPI_PREDICT_WORKERS="2")
        path = self.path(*REGION)
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(server.get, [path, path]))
        self.assertEqual([a.status for a in answers], [200, 200])
        self.assertEqual(answers[0].body, answers[1].body)
        self.assertEqual(server.get(path).body, answers[0].body)

    def test_busy_answers_503(self):
        # One worker and the slow exact tiling: a second request finds
        # the worker busy and must not queue.
        server = self.server(AAPI_PREDICT_WORKERS="1",
                             AAPI_PREDICT_TILING="exact")
        # A probe may take the worker before the slow request does; then
        # the slow one is the request that finds it busy: try again.
        for _ in range(3):
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                slow = pool.submit(server.get, self.path(0, 0, 2000, 2000))
                time.sleep(0.2)
                busy = None
                while not slow.done() and busy is None:
                    answer = server.get(self.path(500, 6400, 64, 64))
                    if answer.status == 503:
                        busy = answer
                    time.sleep(0.05)
                status = slow.result().status
            if status == 200:
                break
            self.assertEqual(status, 503)
        self.assertEqual(status, 200)
        self.assertIsNotNone(busy, "no request found the worker busy")
        self.assertIn("Retry-After", busy.headers)


if __name__ == "__main__":
    unittest.main(verbosity=2)
