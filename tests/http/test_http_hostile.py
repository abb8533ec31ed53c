"""Hostile input answered with 4xx while the stored versions stay intact:
SQL and path text in the slide id, entity bombs and external entities,
huge, negative and non-numeric regions, empty and oversized bodies."""
import random
import socket
import unittest
import urllib.parse

import kidney
from kidney import asap, square

BOMB = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<ASAP_Annotations><Annotations><Annotation Name="&lol5;" Type="Polygon"
 PartOfGroup="None" Color="#000000"><Coordinates>
<Coordinate Order="0" X="1" Y="1"/><Coordinate Order="1" X="9" Y="1"/>
<Coordinate Order="2" X="9" Y="9"/></Coordinates></Annotation>
</Annotations></ASAP_Annotations>
"""

EXTERNAL = """<?xml version="1.0"?>
<!DOCTYPE foo [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<ASAP_Annotations><Annotations><Annotation Name="&xxe;" Type="Polygon"
 PartOfGroup="None" Color="#000000"><Coordinates>
<Coordinate Order="0" X="1" Y="1"/><Coordinate Order="1" X="9" Y="1"/>
<Coordinate Order="2" X="9" Y="9"/></Coordinates></Annotation>
</Annotations></ASAP_Annotations>
"""

GIB = 1 << 30


class HostileTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server, cls.slides = kidney.registered_server(["kidney_val"])
        cls.server.start()
        cls.sid = cls.slides["kidney_val"][0]

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def setUp(self):
        self.before = self.newest()

    def tearDown(self):
        # Whatever was sent, the newest version is what it was.
        self.assertEqual(self.newest(), self.before)

    def newest(self):
        r = self.server.get(f"/annotation/{self.sid}")
        self.assertEqual(r.status, 200)
        versions = self.server.get(
            f"/api/v1/slides/{self.sid}/versions").json()["versions"]
        return r.body, len(versions)

    def assert_4xx(self, response, status=None):
        self.assertGreaterEqual(response.status, 400, response.body)
        self.assertLess(response.status, 500, response.body)
        if status is not None:
            self.assertEqual(response.status, status, response.body)
        self.assertIn("error", response.json())

    def test_slide_id_sql_and_paths(self):
        body = asap([("a", square(1, 1, 5))])
        for text in ["' OR '1'='1", "1; DROP TABLE Slides; --",
                     "../../../etc/passwd", "..", "%00", self.sid.upper(),
                     self.sid + "0", self.sid[:-1] + "g", "a" * 5000]:
            quoted = urllib.parse.quote(text, safe="")
            for path in [f"/annotation/{quoted}",
                         f"/api/v1/slides/{quoted}",
                         f"/api/v1/slides/{quoted}/versions"]:
                r = self.server.get(path)
                self.assertIn(r.status, (400, 404, 414), (path, r.body))
            r = self.server.post(f"/annotation/{quoted}", body)
            self.assertIn(r.status, (400, 404, 414), (text, r.body))
        # A NUL does not cut a path short: the id with "%00.dzi" after it
        # is no slide, not the slide's JSON.
        for suffix in ["%00.dzi", "%00/versions", "%00"]:
            r = self.server.get(f"/api/v1/slides/{self.sid}{suffix}")
            self.assert_4xx(r, 404)
        self.assertEqual(
            self.server.get(f"/api/v1/slides/{self.sid}%2Edzi").status, 200)
        # Bytes that are not UTF-8 still get a JSON reason.
        self.assert_4xx(self.server.get("/annotation/%ff%fe"), 404)
        self.assert_4xx(self.server.get("/%ff%fe/x"), 404)
        self.assertEqual(self.server.get("/api/v1/health").json()["slides"],
                         1)

    def test_entity_bomb(self):
        r = self.server.post(f"/annotation/{self.sid}", BOMB)
        self.assert_4xx(r)

    def test_external_entity(self):
        r = self.server.post(f"/annotation/{self.sid}", EXTERNAL)
        self.assert_4xx(r)
        self.assertNotIn(b"root:", r.body)

    def test_unparsable_xml(self):
        r = self.server.post(f"/annotation/{self.sid}",
                             "<ASAP_Annotations><Annotations><Annot")
        self.assert_4xx(r, 422)

    def test_other_xml(self):
        r = self.server.post(f"/annotation/{self.sid}",
                             "<?xml version='1.0'?><Annotations><Region/>"
                             "</Annotations>")
        self.assert_4xx(r, 422)

    def test_degenerate_shapes(self):
        one_point = ('<ASAP_Annotations><Annotations><Annotation Name="p" '
                     'Type="Polygon" PartOfGroup="None" Color="#000000">'
                     '<Coordinates><Coordinate Order="0" X="1" Y="1"/>'
                     '</Coordinates></Annotation></Annotations>'
                     '</ASAP_Annotations>')
        r = self.server.post(f"/annotation/{self.sid}", one_point)
        self.assert_4xx(r, 422)
        self.assertIn("fewer than 3", r.json()["error"])
        two_point_ring = ('{"type": "Polygon", "coordinates": '
                          '[[[1, 1], [5, 5], [1, 1]]]}')
        r = self.server.post(f"/annotation/{self.sid}", two_point_ring)
        self.assert_4xx(r, 422)

    def test_empty_body(self):
        self.assert_4xx(self.server.post(f"/annotation/{self.sid}", b""),
                        400)

    def test_bad_regions(self):
        body = asap([("a", square(1, 1, 5))])
        for query in ["x=abc&y=0&width=10&height=10",
                      "x=0&y=0&width=-10&height=10",
                      "x=-5&y=0&width=10&height=10",
                      "x=0&y=0&width=0&height=10",
                      "x=1e12&y=0&width=10&height=10",
                      "x=0&y=0&width=99999999999999999999&height=1",
                      "x=2147483000&y=0&width=100000&height=10",
                      "x=0&y=0&width=10",
                      "x=0x10&y=0&width=10&height=10",
                      "x=%205&y=0&width=10&height=10",
                      "x=5%00&y=0&width=10&height=10",
                      "x=0&y=0%00&width=10&height=10",
                      "x=" + "9" * 5000 + "&y=0&width=1&height=1",
                      "x=0&y=0&width=10&height=10&x=5"]:
            r = self.server.post(f"/annotation/{self.sid}?{query}", body)
            self.assert_4xx(r, 400)
            r = self.server.get(f"/annotation/{self.sid}?{query}")
            self.assert_4xx(r, 400)

    def test_many_query_parameters(self):
        # A few kilobytes of parameters reach the handlers, which answer
        # with a reason (libmicrohttpd's default pool closed the
        # connection without a word), and a 40 KB one is refused as such.
        extra = "&".join(f"p{i}=1" for i in range(500))
        r = self.server.get(f"/annotation/{self.sid}?x=abc&y=0&width=1"
                            f"&height=1&{extra}")
        self.assert_4xx(r, 400)
        r = self.server.get(f"/annotation/{self.sid}?x=0&pad={'a' * 32000}")
        self.assert_4xx(r, 400)
        self.assertIn("longer than", r.json()["error"])
        self.assertEqual(self.server.get("/api/v1/health").status, 200)

    def test_gib_body_content_length(self):
        """Content-Length of 1 GiB: 413 before a byte of it is read."""
        with socket.create_connection(("127.0.0.1", self.server.port)) as s:
            s.sendall(f"POST /annotation/{self.sid} HTTP/1.1\r\n"
                      f"Host: x\r\nContent-Length: {GIB}\r\n"
                      "Content-Type: application/xml\r\n\r\n".encode())
            answer = self.read_answer(s)
            self.assertTrue(answer.startswith(b"HTTP/1.1 413"),
                            answer[:200])
            # The server has closed: streaming the body on goes nowhere.
            sent = 0
            try:
                while sent < GIB:
                    s.sendall(b"<" * 65536)
                    sent += 65536
            except OSError:
                pass
            self.assertLess(sent, GIB)

    def test_gib_body_chunked(self):
        """A chunked 1 GiB body: cut off, never buffered, never stored."""
        sent = 0
        chunk = b"%x\r\n" % 65536 + b"x" * 65536 + b"\r\n"
        answer = b""
        with socket.create_connection(("127.0.0.1", self.server.port)) as s:
            s.sendall(f"POST /annotation/{self.sid} HTTP/1.1\r\n"
                      "Host: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                      .encode())
            try:
                while sent < GIB:
                    s.sendall(chunk)
                    sent += 65536
                s.sendall(b"0\r\n\r\n")
            except OSError:
                pass
            try:
                answer = self.read_answer(s)
            except OSError:
                answer = b""
        self.assertLess(sent, GIB)
        if answer:
            self.assertTrue(answer.startswith(b"HTTP/1.1 413"), answer[:200])

    def test_garbage_requests(self):
        """Random bytes, broken request lines and odd methods: the server
        answers or closes, and goes on serving."""
        rng = random.Random(7)
        samples = [b"\x00" * 100, b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                   b"POST /annotation/%s HTTP/1.1\r\nContent-Length: 5\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\nzz\r\n" %
                   self.sid.encode(),
                   b"GET /%ff%fe%00 HTTP/1.1\r\nHost: x\r\n"
                   b"Connection: close\r\n\r\n",
                   b"BREW /annotation HTTP/1.1\r\nHost: x\r\n\r\n",
                   b"GET / HTTP/1.1\r\n" + b"X-A: " + b"b" * 100000 +
                   b"\r\n\r\n"]
        samples += [bytes(rng.randrange(256) for _ in range(rng.randrange(
            1, 400))) for _ in range(40)]
        for sample in samples:
            with socket.create_connection(("127.0.0.1",
                                           self.server.port)) as s:
                try:
                    s.sendall(sample)
                    s.shutdown(socket.SHUT_WR)
                    # An incomplete request is simply waited on.
                    self.read_answer(s, timeout=1)
                except OSError:
                    pass
        self.assertEqual(self.server.get("/api/v1/health").status, 200)

    @staticmethod
    def read_answer(sock, timeout=60):
        sock.settimeout(timeout)
        data = b""
        while True:
            try:
                part = sock.recv(65536)
            except ConnectionResetError:
                break
            if not part:
                break
            data += part
        return data


if __name__ == "__main__":
    unittest.main()
