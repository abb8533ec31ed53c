"""Large uploads are parsed one at a time: a body of 8 MiB or more that
arrives while another is being processed gets 503 with Retry-After, and
the stored versions hold exactly the uploads that were answered 201."""
import http.client
import json
import select
import unittest

import kidney

# 8 MiB: the size from which the server takes large bodies one by one.
LARGE = 8 * 1024 * 1024


def triangles(count, group, x0=0):
    """A GeoJSON FeatureCollection of count small triangles."""
    features = []
    for i in range(count):
        x, y = x0 + (i % 1000) * 12, (i // 1000) * 12
        features.append({
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [[
                [x, y], [x + 8, y], [x, y + 8], [x, y]]]},
            "properties": {"name": f"t{i}",
                           "classification": {"name": group}}})
    text = json.dumps({"type": "FeatureCollection", "features": features})
    return text.encode()


class LargeBodiesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server, cls.slides = kidney.registered_server(["kidney_val"])
        cls.server.start()
        cls.sid = cls.slides["kidney_val"][0]
        cls.path = f"/api/v1/slides/{cls.sid}/annotations"

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def send(self, body):
        """Sends a POST and returns the connection, response unread."""
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port,
                                          timeout=600)
        conn.request("POST", self.path, body=body,
                     headers={"Content-Type": "application/json"})
        return conn

    def test_second_large_body_waits_its_turn(self):
        big = triangles(250000, "Glomerulus")
        second = triangles(50000, "Tubules", x0=20000)
        self.assertGreater(len(second), LARGE)
        overlapped = False
        for _ in range(3):
            first = self.send(big)
            other = self.send(second)
            answer = other.getresponse()
            body = answer.read()
            # The first upload is still being processed when nothing has
            # come back on its connection yet.
            busy = not select.select([first.sock], [], [], 0)[0]
            done = first.getresponse()
            self.assertEqual(done.status, 201, done.read())
            done.read()
            first.close()
            other.close()
            if busy:
                overlapped = True
                self.assertEqual(answer.status, 503, body)
                self.assertEqual(answer.getheader("Retry-After"), "1")
                self.assertIn(b"retry", body)
                break
        self.assertTrue(overlapped, "the first upload never outlasted the "
                        "second's; cannot see the one-at-a-time rule")
        # Once the first is done the second goes through (without a
        # region it replaces the whole set).
        r = self.server.post(self.path, second)
        self.assertEqual(r.status, 201, r.body)
        geo = self.server.get(
            f"/api/v1/slides/{self.sid}/versions/latest?format=geojson")
        self.assertEqual(geo.status, 200)
        groups = {}
        for f in geo.json()["features"]:
            name = f["properties"]["classification"]["name"]
            groups[name] = groups.get(name, 0) + 1
        self.assertEqual(groups.get("Tubules"), 50000)


if __name__ == "__main__":
    unittest.main()
