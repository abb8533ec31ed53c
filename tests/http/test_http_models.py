"""A damaged newest model file: the server, at start and while running,
serves the newest file that loads and says so in /api/v1/models, listing
the damaged files with their errors; `aapi predict` falls back the same
way, and a damaged native file's error says what is wrong with it."""
import os
import time
import unittest

import kidney
from aapi_server import shared_path

CUT = 3000


class DamagedModelTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        ckpt = shared_path("fixtures/unet/unet_d3_wf3_bn_upconv/model.ckpt")
        cls.server, cls.slides = kidney.registered_server(["kidney_val"])
        cls.server.aapi("import-model", "--class", "Glomerulus", ckpt)
        cls.folder = os.path.join(cls.server.env["AAPI_MODEL_DIR"],
                                  "Glomerulus")
        (cls.good,) = os.listdir(cls.folder)
        # Named to sort after the good file: the newest, as in the report.
        cls.damaged = "2999-01-01T00:00:00.000000Z.aapimodel"
        with open(os.path.join(cls.folder, cls.good), "rb") as f:
            head = f.read(CUT)
        with open(os.path.join(cls.folder, cls.damaged), "wb") as f:
            f.write(head)
        cls.server.start()
        cls.sid = cls.slides["kidney_val"][0]

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def glomerulus(self):
        r = self.server.get("/api/v1/models")
        self.assertEqual(r.status, 200, r.body)
        return r.json()["classes"]["Glomerulus"]

    def test_start_serves_newest_that_loads(self):
        glom = self.glomerulus()
        self.assertEqual(glom["current"], self.good)
        broken = {b["version"]: b["error"] for b in glom["broken"]}
        self.assertIn(self.damaged, broken)
        self.assertIn("checksum", broken[self.damaged])
        self.assertEqual(self.server.get("/api/v1/models").json()
                         ["classes"]["Artery"]["broken"], [])

        r = self.server.get(f"/annotation/{self.sid}?x=1000&y=1000"
                            "&width=256&height=256")
        self.assertEqual(r.status, 200, r.body)
        # One warning names the file and why; a rescan does not repeat it.
        warnings = [line for line in self.server.log().splitlines()
                    if self.damaged + " skipped" in line]
        self.assertEqual(len(warnings), 1, self.server.log())
        self.assertIn("checksum", warnings[0])

    def test_running_server_keeps_served_model(self):
        empty = "3000-01-01T00:00:00.000000Z.aapimodel"
        open(os.path.join(self.folder, empty), "wb").close()
        self.addCleanup(os.remove, os.path.join(self.folder, empty))
        # The folders are rescanned every 30 s.
        deadline = time.time() + 60
        while time.time() < deadline:
            glom = self.glomerulus()
            if any(b["version"] == empty for b in glom["broken"]):
                break
            time.sleep(1)
        self.assertEqual(glom["current"], self.good)
        broken = {b["version"]: b["error"] for b in glom["broken"]}
        self.assertIn("empty file", broken.get(empty, ""), glom)
        self.assertIn(self.damaged, broken)

    def test_cli_predict_falls_back(self):
        result = self.server.aapi("predict", "--slide", self.sid,
                                  "--region", "1000,1000,256,256",
                                  check=False)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("<ASAP_Annotations", result.stdout)
        self.assertIn(self.damaged + " skipped", result.stderr)
        self.assertIn(f"serving model {self.good}", result.stderr)

    def test_damaged_native_file_error(self):
        # Cut inside the header: no digest to check, no zip to be.
        path = os.path.join(self.server.data_dir, "cut.aapimodel")
        with open(os.path.join(self.folder, self.good), "rb") as f:
            head = f.read(20)
        with open(path, "wb") as f:
            f.write(head)
        result = self.server.aapi("nn-eval", "--model", path, "--input",
                                  path, "--shape", "1,3,64,64",
                                  "--output", os.devnull, check=False)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn("is not a valid aapi model file: truncated",
                      result.stderr)
        self.assertNotIn("zip", result.stderr)


if __name__ == "__main__":
    unittest.main()
