"""A prediction whose client hangs up stops soon after, on a server with
one prediction worker: the next prediction gets the worker within
seconds (the abandoned one would run for half a minute on two cores),
the log says the first was cancelled, and the engine answers as before.

Real binary over loopback, kidney_val, the fixture U-Net imported for
all four classes (so a region runs four models)."""
import itertools
import re
import socket
import time
import unittest

import kidney
from aapi_server import shared_path

CLASSES = ("Glomerulus", "Artery", "Tubules", "Arteriole")
# 4000 x 4000 takes about 40 s on two cores with the exact tiling; a
# cancel takes effect within one batch of tiles.
LARGE = (500, 500, 4000, 4000)
SMALL = (500, 6400, 512, 512)
# How long the next prediction may wait for the worker: generous, and
# still far below the abandoned prediction's run.
GRACE_S = 10.0


class CancelTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        ckpt = shared_path("fixtures/unet/unet_d3_wf3_bn_upconv/model.ckpt")
        cls.server, slides = kidney.registered_server(
            ["kidney_val"], env={"AAPI_PREDICT_WORKERS": "1",
                                 "AAPI_MAX_PREDICT_PIXELS": "16000000"})
        for name in CLASSES:
            cls.server.aapi("import-model", "--class", name, ckpt)
        cls.server.start()
        cls.sid = slides["kidney_val"][0]
        cls.small = {}
        cls.ids = itertools.count()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def paths(self, region):
        x, y, w, h = region
        query = f"x={x}&y={y}&width={w}&height={h}"
        return {"geojson": f"/api/v1/slides/{self.sid}/predict?{query}",
                "asap": f"/annotation/{self.sid}?{query}"}

    def small_answer(self, route):
        """The small region's answer on a quiet server, made once; it
        also builds the primitives, so that the abandoned request is in
        its tile loop when its client leaves."""
        if route not in self.small:
            answer = self.server.get(self.paths(SMALL)[route])
            self.assertEqual(answer.status, 200, answer.body)
            self.small[route] = answer.body
        return self.small[route]

    def abandon(self, path, request_id):
        """Sends a request on a raw socket and closes it after 0.5 s,
        as a client that gives up does."""
        sock = socket.create_connection(("127.0.0.1", self.server.port))
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     f"X-Request-Id: {request_id}\r\n\r\n".encode())
        time.sleep(0.5)
        sock.close()

    def next_prediction(self, path, deadline):
        """Retries while the worker is busy (503); the first other answer
        or None at the deadline."""
        while time.monotonic() < deadline:
            answer = self.server.get(path, timeout=GRACE_S)
            if answer.status != 503:
                return answer
            time.sleep(0.05)
        return None

    def wait_log(self, pattern, deadline):
        while time.monotonic() < deadline:
            if re.search(pattern, self.server.log(), re.M):
                return True
            time.sleep(0.05)
        return False

    def check_abandoned(self, route):
        expected = self.small_answer(route)
        request_id = f"abandoned-{route}-{next(self.ids)}"

        self.abandon(self.paths(LARGE)[route], request_id)
        deadline = time.monotonic() + GRACE_S
        answer = self.next_prediction(self.paths(SMALL)[route], deadline)
        self.assertIsNotNone(answer, "the worker stayed busy after the "
                             "client hung up:\n" + self.server.log())
        self.assertEqual(answer.status, 200, answer.body)
        self.assertEqual(answer.body, expected)

        # One line says it was cancelled; the access line neither
        # claims an answer (200) nor blames the server (5xx).
        cancelled = (rf"prediction of {self.sid} cancelled after .*"
                     rf"client closed the connection id={request_id}$")
        access = rf"GET \S+ 499 .* id={request_id}$"
        self.assertTrue(self.wait_log(cancelled, deadline),
                        self.server.log())
        self.assertTrue(self.wait_log(access, deadline), self.server.log())
        self.assertNotRegex(self.server.log(),
                            rf"(?m)GET \S+ [25]\d\d \d+ bytes .* "
                            rf"id={request_id}$")
        self.assertEqual(self.server.get("/api/v1/health").status, 200)

    def test_geojson_route(self):
        self.check_abandoned("geojson")

    def test_asap_route(self):
        self.check_abandoned("asap")

    def test_cancels_in_a_row(self):
        # The engine stays healthy: each cancel leaves the worker free
        # and the answers unchanged.
        for route in ("geojson", "asap", "geojson"):
            with self.subTest(route=route):
                self.check_abandoned(route)
        self.assertNotIn("CRITICAL", self.server.log())


if __name__ == "__main__":
    unittest.main(verbosity=2)
