"""The compatible prediction route with a real model: the fixture U-Net
imported for one class answers ASAP XML for a region; without models the
route says why."""
import os
import unittest

import kidney
from aapi_server import shared_path


class PredictTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        ckpt = shared_path("fixtures/unet/unet_d3_wf3_bn_upconv/model.ckpt")
        cls.server, cls.slides = kidney.registered_server(["kidney_val"])
        cls.server.aapi("import-model", "--class", "Glomerulus", ckpt)
        cls.server.start()
        cls.sid = cls.slides["kidney_val"][0]

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def test_region_as_asap(self):
        r = self.server.get(f"/annotation/{self.sid}?x=1000&y=1000"
                            "&width=512&height=512")
        self.assertEqual(r.status, 200, r.body)
        self.assertIn(b"<ASAP_Annotations", r.body)
        # Prediction stores nothing: the newest version is unchanged.
        with open(self.slides["kidney_val"][2], "rb") as f:
            self.assertEqual(self.server.get(f"/annotation/{self.sid}").body,
                             f.read())

    def test_region_outside_slide(self):
        r = self.server.get(f"/annotation/{self.sid}?x=2000000000&y=0"
                            "&width=512&height=512")
        self.assertGreaterEqual(r.status, 400, r.body)
        self.assertLess(r.status, 500, r.body)

    def test_api_route_refuses_unknown_parameters(self):
        base = f"/api/v1/slides/{self.sid}/predict?x=1000&y=1000&width=64"
        r = self.server.get(base + "&height=64")
        self.assertEqual(r.status, 200, r.body)
        for extra in ["&tiling=fast", "&format=asap", "&_=123"]:
            r = self.server.get(base + "&height=64" + extra)
            self.assertEqual(r.status, 400, extra)
            self.assertIn("unknown query parameter", r.json()["error"])

    def test_unknown_slide(self):
        r = self.server.get("/annotation/" + "a" * 32 +
                            "?x=0&y=0&width=64&height=64")
        self.assertEqual(r.status, 404)


if __name__ == "__main__":
    unittest.main()
