"""A registered slide whose file is deleted while the server runs: every
route that needs its pixels answers 404 naming the slide and the file's
base name (not the server's folders), the server stays up, and the slide
serves again once its file is back.  `aapi predict` on a file that does
not exist says so."""
import os
import shutil
import unittest

from aapi_server import AapiServer, run_aapi, shared_path, slide_id

SMALL = "data/formats/openslide-python__small.svs"
MODEL = "fixtures/unet/unet_d3_wf3_bn_upconv/model.ckpt"


class MissingSlideTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.source = shared_path(SMALL)
        model = shared_path(MODEL)
        cls.server = AapiServer()
        cls.slide_dir = os.path.join(cls.server.data_dir, "slides")
        os.makedirs(cls.slide_dir)
        cls.path = os.path.join(cls.slide_dir, "gone.svs")
        shutil.copyfile(cls.source, cls.path)
        cls.sid = slide_id(cls.path)
        cls.server.aapi("init-data", "--slide-dir", cls.slide_dir)
        cls.server.aapi("import-model", "--class", "Glomerulus", model)
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def routes(self):
        base = f"/api/v1/slides/{self.sid}"
        region = "x=0&y=0&width=16&height=16"
        return [f"{base}_files/4/0_0.jpeg", f"{base}_files/3/0_0.png",
                f"{base}.dzi", f"{base}/thumbnail",
                f"{base}/associated/thumbnail", f"{base}/predict?{region}",
                f"/annotation/{self.sid}?{region}"]

    def assert_missing(self, path):
        r = self.server.get(path)
        self.assertEqual(r.status, 404, (path, r.body))
        reason = r.json()["error"]
        self.assertIn(self.sid, reason, path)
        self.assertIn("gone.svs is missing", reason, path)
        self.assertNotIn(self.slide_dir, reason, path)

    def test_deleted_then_restored(self):
        # Served first, so that the open handle is cached.
        for path in self.routes()[:2]:
            r = self.server.get(path)
            self.assertEqual(r.status, 200, (path, r.body))

        os.unlink(self.path)
        try:
            for path in self.routes() + self.routes()[:1]:
                self.assert_missing(path)
            # The listing still shows the row, without image fields.
            r = self.server.get(f"/api/v1/slides/{self.sid}")
            self.assertEqual(r.status, 200, r.body)
            self.assertIsNone(r.json()["width"])
            self.assertEqual(self.server.get("/api/v1/health").status, 200)
        finally:
            shutil.copyfile(self.source, self.path)

        for path in self.routes():
            r = self.server.get(path)
            self.assertEqual(r.status, 200, (path, r.body))


class MissingSlideFileCliTest(unittest.TestCase):
    def test_predict_on_a_missing_file(self):
        server = AapiServer()
        try:
            gone = os.path.join(server.data_dir, "nowhere", "gone.svs")
            result = run_aapi(["predict", "--slide-file", gone,
                               "--region", "0,0,64,64"], env=server.env,
                              check=False, timeout=120)
            self.assertNotEqual(result.returncode, 0)
            self.assertIn(f"{gone}: no such file", result.stderr)
        finally:
            server.cleanup()


if __name__ == "__main__":
    unittest.main()
