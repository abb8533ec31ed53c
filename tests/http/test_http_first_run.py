"""First run: the steps of scripts/run.sh on an empty slide dir (init-db,
make-demo, init-data, serve) and the demo slide is served."""
import os
import unittest

from aapi_server import AapiServer


class FirstRunTest(unittest.TestCase):
    def test_demo_slide_served(self):
        server = AapiServer()
        self.addCleanup(server.cleanup)
        slide_dir = os.path.join(server.data_dir, "slides")
        os.makedirs(slide_dir)
        server.aapi("init-db")
        server.aapi("make-demo", "--slide-dir", slide_dir)
        server.aapi("init-data", "--slide-dir", slide_dir)
        server.start()

        slides = server.get("/api/v1/slides").json()["slides"]
        self.assertEqual(len(slides), 1)
        sid = slides[0]["id"]
        self.assertGreater(slides[0]["width"], 0)
        r = server.get(f"/annotation/{sid}")
        self.assertEqual(r.status, 200)
        self.assertIn(b"<ASAP_Annotations", r.body)
        self.assertIn(slides[0]["name"], server.get("/slide_paths").text())


if __name__ == "__main__":
    unittest.main()
