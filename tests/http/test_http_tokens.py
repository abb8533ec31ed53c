"""Bearer tokens: with AAPI_API_TOKENS set, writes need one of them and
reads stay open; AAPI_TOKENS_FOR_READS closes reads too; settings that
say nothing usable stop the server at start with a message."""
import http.client
import os
import subprocess
import unittest

import kidney
from aapi_server import AapiServer, aapi_binary
from kidney import asap, square

ACCESS_VARS = ("AAPI_API_TOKENS", "AAPI_TOKENS_FOR_READS")


class TokensTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server, cls.slides = kidney.registered_server(
            ["kidney_val"], env={"AAPI_API_TOKENS": "tok-one,tok-two"})
        cls.server.start()
        cls.sid = cls.slides["kidney_val"][0]
        cls.body = asap([("tokened", square(20, 20, 30))])

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def post(self, path, token=None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.server.post(path, self.body, headers=headers)

    def test_without_token(self):
        r = self.post(f"/annotation/{self.sid}")
        self.assertEqual(r.status, 401)
        self.assertIn("Bearer", r.json()["error"])
        r = self.post(f"/api/v1/slides/{self.sid}/annotations")
        self.assertEqual(r.status, 401)

    def test_wrong_token(self):
        for token in ["tok-three", "tok-one ", "tok-on", "TOK-ONE"]:
            r = self.post(f"/annotation/{self.sid}", token)
            self.assertEqual(r.status, 401, token)

    def test_right_tokens(self):
        r = self.post(f"/annotation/{self.sid}", "tok-one")
        self.assertEqual(r.status, 200, r.body)
        r = self.post(f"/api/v1/slides/{self.sid}/annotations", "tok-two")
        self.assertEqual(r.status, 201, r.body)

    def test_two_authorization_headers(self):
        # Two credentials, good and bad in either order: neither counts.
        for first, second in [("tok-one", "nope"), ("nope", "tok-one"),
                              ("tok-one", "tok-two")]:
            conn = http.client.HTTPConnection("127.0.0.1", self.server.port,
                                              timeout=60)
            body = self.body.encode()
            conn.putrequest("POST", f"/api/v1/slides/{self.sid}/annotations")
            conn.putheader("Authorization", f"Bearer {first}")
            conn.putheader("Authorization", f"Bearer {second}")
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            r = conn.getresponse()
            text = r.read()
            conn.close()
            self.assertEqual(r.status, 400, (first, second))
            self.assertIn(b"more than once", text)

    def test_reads_open(self):
        self.assertEqual(self.server.get(f"/annotation/{self.sid}").status,
                         200)
        self.assertEqual(self.server.get("/api/v1/slides").status, 200)


# Settings refused at start: (environment, part of the message).
REFUSED = [
    ({"AAPI_API_TOKENS": ""}, "AAPI_API_TOKENS is set but holds no token"),
    ({"AAPI_API_TOKENS": ","}, "AAPI_API_TOKENS is set but holds no token"),
    ({"AAPI_API_TOKENS": " , "}, "AAPI_API_TOKENS is set but holds no token"),
    ({"AAPI_API_TOKENS": "sec-1,sec 2"}, "token 2 holds a space"),
    ({"AAPI_API_TOKENS": "sec-1", "AAPI_TOKENS_FOR_READS": "maybe"},
     "AAPI_TOKENS_FOR_READS: 'maybe' is not one of"),
    ({"AAPI_TOKENS_FOR_READS": "yes"}, "AAPI_API_TOKENS is unset"),
    ({"AAPI_TOKENS_FOR_READS": "1"}, "AAPI_API_TOKENS is unset"),
    # Prediction settings too: a typo must not pass for the default.
    ({"AAPI_PREDICT_TILING": "bogus"}, "AAPI_PREDICT_TILING=bogus: not"),
    ({"AAPI_PREDICT_PRECISION": "bf61"},
     "AAPI_PREDICT_PRECISION=bf61: not"),
    ({"AAPI_NN_WINOGRAD": "maybe"}, "AAPI_NN_WINOGRAD: 'maybe' is not"),
]


def access_env(settings):
    """The environment with the access settings replaced by settings."""
    env = {k: v for k, v in os.environ.items() if k not in ACCESS_VARS}
    env.update(settings)
    return env


class AccessSettingsTest(unittest.TestCase):
    """Needs no test data: an empty database is enough."""

    def serve(self, settings):
        server = AapiServer(env=settings)
        server.env = access_env(server.env)
        self.addCleanup(server.cleanup)
        server.aapi("init-db")
        return server

    def test_refused_at_start(self):
        server = self.serve({})
        for settings, message in REFUSED:
            with self.subTest(settings=settings):
                env = access_env(dict(server.env, **settings))
                result = subprocess.run(
                    [aapi_binary(), "serve", "--port", "0"], env=env,
                    capture_output=True, text=True, timeout=60)
                self.assertNotEqual(result.returncode, 0, result.stderr)
                self.assertIn(message, result.stderr)
                self.assertNotIn("sec-1", result.stderr)

    def test_open_by_default(self):
        server = self.serve({}).start()
        self.assertIn("writes and reads are open", server.log())
        r = server.post("/api/v1/slides/00ff/annotations", "<x/>")
        self.assertNotIn(r.status, (401, 403), r.body)

    def test_reads_closed(self):
        server = self.serve({"AAPI_API_TOKENS": " sec-1 ,, sec-2 ,",
                             "AAPI_TOKENS_FOR_READS": "Yes"}).start()
        self.assertIn("writes and reads need a bearer token (2 configured)",
                      server.log())
        self.assertNotIn("sec-1", server.log())
        self.assertEqual(server.get("/api/v1/slides").status, 401)
        auth = {"Authorization": "Bearer sec-2"}
        self.assertEqual(server.get("/api/v1/slides", headers=auth).status,
                         200)
        self.assertEqual(server.get("/api/v1/health").status, 200)
        r = server.post("/api/v1/slides/00ff/annotations", "<x/>")
        self.assertEqual(r.status, 401)
        r = server.post("/api/v1/slides/00ff/annotations", "<x/>",
                        headers={"Authorization": "Bearer sec-1"})
        self.assertNotEqual(r.status, 401, r.body)

    def test_reads_open_when_off(self):
        server = self.serve({"AAPI_API_TOKENS": "sec-1",
                             "AAPI_TOKENS_FOR_READS": "off"}).start()
        self.assertIn("writes need a bearer token (1 configured), reads "
                      "are open", server.log())
        self.assertEqual(server.get("/api/v1/slides").status, 200)
        r = server.post("/api/v1/slides/00ff/annotations", "<x/>")
        self.assertEqual(r.status, 401)


if __name__ == "__main__":
    unittest.main()
