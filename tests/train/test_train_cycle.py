"""Training cycles on the real slide: bootstrap, skip when unchanged, train
on a posted correction, reject, the old HDF5 validation sets, HTTP, and a
kill in the middle of training."""
import glob
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

from aapi_server import (SMALL_TRAINING as SMALL, AapiServer, aapi_binary,
                         run_aapi, shared_path)


CORRECTION = """<?xml version="1.0"?>
<ASAP_Annotations><Annotations>
<Annotation Name="Glomerulus_fix" Type="Polygon" PartOfGroup="Glomerulus"
 Color="#4dd156"><Coordinates>
<Coordinate Order="0" X="7000" Y="7000"/>
<Coordinate Order="1" X="7400" Y="7000"/>
<Coordinate Order="2" X="7400" Y="7400"/>
<Coordinate Order="3" X="7000" Y="7400"/>
</Coordinates></Annotation>
</Annotations><AnnotationGroups>
<Group Name="Glomerulus" PartOfGroup="None" Color="#4dd156"><Attributes/>
</Group></AnnotationGroups></ASAP_Annotations>
"""


def model_files(model_dir, name="Glomerulus"):
    return sorted(glob.glob(os.path.join(model_dir, name, "*.aapimodel")))


class TrainCycle(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        svs = shared_path("data/slides/kidney_train.svs")
        xml = shared_path("data/slides/kidney_train.xml")
        cls.tmp = tempfile.mkdtemp(prefix="aapi-train-")
        cls.slides = os.path.join(cls.tmp, "slides")
        os.makedirs(cls.slides)
        os.symlink(svs, os.path.join(cls.slides, "kidney_train.svs"))
        os.symlink(xml, os.path.join(cls.slides, "kidney_train.xml"))
        cls.data = os.path.join(cls.tmp, "data")
        cls.models = os.path.join(cls.tmp, "model")
        cls.env = dict(SMALL, AAPI_DATA_DIR=cls.data,
                       AAPI_MODEL_DIR=cls.models)
        run_aapi(["init-db"], env=cls.env)
        run_aapi(["init-data", "--slide-dir", cls.slides], env=cls.env)

    @classmethod
    def tearDownClass(cls):
        if os.environ.get("AAPI_KEEP_TMP") != "1":
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def train(self, *args, env=None, check=True):
        full = dict(self.env)
        full.update(env or {})
        return run_aapi(["train", "--class", "Glomerulus"] + list(args),
                        env=full, check=check)

    def runs(self):
        db = sqlite3.connect(os.path.join(self.data, "aapi.db"))
        try:
            tables = [r[0] for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type='table'")]
            table = next(t for t in tables if "run" in t.lower())
            return db.execute(f"SELECT * FROM {table}").fetchall()
        finally:
            db.close()

    def test_1_without_model_needs_bootstrap(self):
        result = self.train()
        self.assertIn("skipped", result.stdout)
        self.assertEqual(model_files(self.models), [])

    def test_2_bootstrap_promotes(self):
        result = self.train("--bootstrap")
        self.assertRegex(result.stdout, r"Glomerulus\s+promoted")
        self.assertEqual(len(model_files(self.models)), 1)
        # The staged (hidden) file was renamed into place.
        folder = os.path.join(self.models, "Glomerulus")
        self.assertEqual([n for n in os.listdir(folder)
                          if n.startswith(".")], [])
        cache = glob.glob(os.path.join(self.data, "train-cache",
                                       "Glomerulus", "*"))
        self.assertEqual(len(cache), 1)

    def test_3_unchanged_is_skipped(self):
        before = model_files(self.models)
        result = self.train("--if-changed")
        self.assertIn("no annotation changed", result.stderr)
        self.assertEqual(model_files(self.models), before)

    def test_3_unknown_class_is_named(self):
        # Even when nothing changed, an unknown class is an error.
        result = run_aapi(["train", "--class", "Nope", "--if-changed"],
                          env=self.env, check=False)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("no class named 'Nope'", result.stderr)

    def test_4_correction_is_trained_on(self):
        cache = glob.glob(os.path.join(self.data, "train-cache",
                                       "Glomerulus", "*"))[0]
        with open(cache, "rb") as f:
            key_before = f.read(4096).split(b"\n")[1]
        with AapiServer(data_dir=self.data, env=self.env) as server:
            slide_id = server.get("/api/v1/slides").json()["slides"][0]["id"]
            resp = server.post(
                f"/annotation/{slide_id}?x=6900&y=6900&width=600"
                "&height=600", CORRECTION)
            self.assertEqual(resp.status, 200, resp.body)
        result = self.train("--if-changed")
        self.assertRegex(result.stdout, r"Glomerulus\s+(promoted|rejected)")
        with open(cache, "rb") as f:
            key_after = f.read(4096).split(b"\n")[1]
        # The slide was cut again from the new version.
        self.assertNotEqual(key_before, key_after)
        self.assertIn(b"updated_at", key_after)

    def test_5_rejection_keeps_served_model(self):
        served = model_files(self.models)
        pattern = os.path.join(self.models, "Glomerulus", "rejected",
                               "*.aapimodel")
        # The cycle of test 4 may have rejected its candidate too.
        before = set(glob.glob(pattern))
        # Demand an impossible improvement: the candidate is rejected.
        result = self.train(env={"AAPI_PROMOTE_MIN_CHANGE": "1000000"})
        self.assertRegex(result.stdout, r"Glomerulus\s+rejected")
        self.assertEqual(model_files(self.models), served)
        self.assertEqual(len(set(glob.glob(pattern)) - before), 1)

    def test_6_kill_during_training(self):
        served = model_files(self.models)
        n_runs = len(self.runs())
        env = dict(os.environ, **self.env)
        env.update({"AAPI_TRAIN_EPOCHS": "50",
                    "AAPI_TRAIN_MAX_PATCHES": "8"})
        proc = subprocess.Popen(
            [aapi_binary(), "train", "--class", "Glomerulus"], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 300
        seen = ""
        while time.time() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            seen += line
            if re.search(r"epoch 1/50", line):
                break
        self.assertIn("epoch 1/50", seen)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        self.assertEqual(model_files(self.models), served)
        self.assertEqual(len(self.runs()), n_runs)
        # The store still works and the next cycle runs.
        self.train()

    def test_7_old_validation_set(self):
        try:
            import h5py
            import numpy
        except ImportError:
            self.skipTest("python3-h5py and numpy are needed to make an "
                          "HDF5 validation set")
        plugin = "/usr/lib/x86_64-linux-gnu/hdf5/serial/plugins"
        if not glob.glob(os.path.join(plugin, "*blosc*")):
            self.skipTest("the blosc filter plugin is not installed")
        os.environ.setdefault("HDF5_PLUGIN_PATH", plugin)
        roi = os.path.join(self.data, "roi")
        os.makedirs(roi, exist_ok=True)
        rng = numpy.random.default_rng(3)
        img = rng.integers(0, 255, size=(6, 256, 256, 3), dtype=numpy.uint8)
        mask = numpy.zeros((6, 256, 256), dtype=numpy.uint8)
        mask[:, 64:192, 64:192] = 1
        with h5py.File(os.path.join(roi, "Glomerulus_val.h5"), "w") as f:
            f.create_dataset("img", data=img, compression=32001)
            f.create_dataset("mask", data=mask, compression=32001)
        result = self.train()
        self.assertIn("6 validation patches", result.stderr)
        self.assertRegex(result.stdout, r"val 6\b")


class TrainHttp(unittest.TestCase):
    def test_train_jobs_models(self):
        svs = shared_path("data/slides/kidney_train.svs")
        xml = shared_path("data/slides/kidney_train.xml")
        tmp = tempfile.mkdtemp(prefix="aapi-train-http-")
        self.addCleanup(shutil.rmtree, tmp, True)
        slides = os.path.join(tmp, "slides")
        os.makedirs(slides)
        os.symlink(svs, os.path.join(slides, "kidney_train.svs"))
        os.symlink(xml, os.path.join(slides, "kidney_train.xml"))
        env = dict(SMALL, AAPI_TRAIN_EPOCHS="3",
                   AAPI_TRAIN_MAX_PATCHES="16")
        server = AapiServer(env=env)
        self.addCleanup(server.cleanup)
        server.aapi("init-db")
        server.aapi("init-data", "--slide-dir", slides)
        server.start()

        resp = server.post("/api/v1/train", '{"class": "Nope"}')
        self.assertEqual(resp.status, 404, resp.body)
        resp = server.post("/api/v1/train", "not json")
        self.assertEqual(resp.status, 400, resp.body)
        resp = server.post("/api/v1/train?class=Nope", "")
        self.assertEqual(resp.status, 400, resp.body)
        self.assertIn("JSON body", resp.json()["error"])
        resp = server.post("/api/v1/train",
                           '{"class": "Glomerulus", "bootstrap": true}')
        self.assertEqual(resp.status, 202, resp.body)
        again = server.post("/api/v1/train", "")
        self.assertEqual(again.status, 409, again.body)

        # Progress shows while it runs; serving stays responsive.
        saw_progress = False
        deadline = time.time() + 600
        while time.time() < deadline:
            jobs = server.get("/api/v1/jobs").json()
            self.assertEqual(server.get("/api/v1/health").status, 200)
            running = jobs["running"]
            if running and running.get("epoch"):
                saw_progress = True
                self.assertEqual(running["class"], "Glomerulus")
            if running is None and jobs["runs"]:
                break
            time.sleep(0.2)
        self.assertTrue(saw_progress)
        run = server.get("/api/v1/jobs").json()["runs"][0]
        self.assertEqual(run["class"], "Glomerulus")
        self.assertEqual(run["decision"], "promoted")
        models = server.get("/api/v1/models").json()["classes"]
        glom = models["Glomerulus"]
        self.assertEqual(len(glom["versions"]), 1)
        self.assertIsNotNone(glom["current"])
        self.assertIsNone(models["Artery"]["current"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
