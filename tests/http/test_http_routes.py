"""The compatible routes and /api/v1 over loopback, on the real kidney
slides registered from a temporary data dir (SQLite)."""
import json
import os
import unittest

import kidney
from kidney import asap, square


class RoutesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server, cls.slides = kidney.registered_server()
        cls.server.start()
        cls.train_id = cls.slides["kidney_train"][0]
        cls.val_id = cls.slides["kidney_val"][0]

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def get(self, path, **kw):
        return self.server.get(path, **kw)

    def post(self, path, body, **kw):
        return self.server.post(path, body, **kw)

    def versions(self, slide_id):
        r = self.get(f"/api/v1/slides/{slide_id}/versions")
        self.assertEqual(r.status, 200, r.body)
        return r.json()["versions"]

    # Compatible routes.

    def test_home(self):
        r = self.get("/")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"home")

    def test_slide_paths(self):
        text = self.get("/slide_paths").text()
        self.assertIn("kidney_train.svs", text)
        self.assertIn("kidney_val.svs", text)

    def test_annotation_initial_as_stored(self):
        with open(self.slides["kidney_val"][2], "rb") as f:
            initial = f.read()
        # The val slide is never posted to in this class.
        r = self.get(f"/annotation/{self.val_id}")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, initial)

    def test_annotation_unknown_slide(self):
        r = self.get("/annotation/" + "0" * 32)
        self.assertEqual(r.status, 404)
        self.assertIn("unknown slide", r.json()["error"])

    def test_predict_without_models(self):
        r = self.get(f"/annotation/{self.val_id}?x=0&y=0&width=512"
                     "&height=512")
        # No model folder in this data dir: 503 saying so, not an empty
        # answer that would read as "nothing found".
        self.assertEqual(r.status, 503, r.body)
        self.assertIn("no class has a model", r.json()["error"])
        self.assertNotIn("Retry-After", r.headers)
        r = self.get(f"/api/v1/slides/{self.val_id}/predict?x=0&y=0"
                     "&width=512&height=512")
        self.assertEqual(r.status, 503, r.body)
        # The start log names the missing folder.
        self.assertRegex(self.server.log(),
                         r"model folder .* does not exist")

    def test_post_compat_region_merge(self):
        sid = self.train_id
        before = self.versions(sid)
        body = asap([("posted_one", square(100, 100, 50))])
        r = self.post(f"/annotation/{sid}?x=0&y=0&width=400&height=400",
                      body)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.text(), body)

        after = self.versions(sid)
        self.assertEqual(len(after), len(before) + 1)
        newest = after[-1]
        self.assertEqual(newest["previous"], before[-1]["seq"])
        self.assertEqual(newest["region"], {"x": 0, "y": 0, "width": 400,
                                            "height": 400})
        latest = self.get(f"/annotation/{sid}").text()
        self.assertIn("posted_one", kidney.annotation_names(latest))

    # /api/v1.

    def test_health(self):
        h = self.get("/api/v1/health").json()
        self.assertEqual(h["status"], "ok")
        self.assertEqual(h["database"], "sqlite")
        self.assertEqual(h["slides"], 2)
        self.assertTrue(h["version"])

    def test_metrics(self):
        self.get("/")
        r = self.get("/api/v1/metrics")
        self.assertEqual(r.status, 200)
        self.assertRegex(r.text(),
                         r'aapi_http_requests_total\{status="2xx"\} [1-9]')

    def test_slides(self):
        slides = self.get("/api/v1/slides").json()["slides"]
        by_id = {s["id"]: s for s in slides}
        self.assertEqual(set(by_id), {self.train_id, self.val_id})
        s = by_id[self.val_id]
        self.assertEqual(s["name"], "kidney_val.svs")
        self.assertEqual(s["vendor"], "aperio")
        self.assertGreater(s["width"], 0)
        self.assertGreater(s["height"], 0)
        self.assertEqual(s["levels"][0]["width"], s["width"])
        self.assertAlmostEqual(s["mpp_x"], 0.252, places=2)
        self.assertEqual(set(s["bounds"]), {"x", "y", "width", "height"})
        self.assertIsInstance(s["associated"], list)
        self.assertGreaterEqual(s["versions"], 1)

    def test_one_slide(self):
        r = self.get(f"/api/v1/slides/{self.val_id}")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["id"], self.val_id)

    def test_one_slide_unknown(self):
        r = self.get("/api/v1/slides/" + "f" * 32)
        self.assertEqual(r.status, 404)
        self.assertIn("unknown slide", r.json()["error"])

    def test_version_asap_and_geojson(self):
        versions = self.versions(self.val_id)
        self.assertEqual(versions[0]["previous"], None)
        seq = versions[0]["seq"]
        r = self.get(f"/api/v1/slides/{self.val_id}/versions/{seq}")
        self.assertEqual(r.status, 200)
        self.assertIn(b"<ASAP_Annotations", r.body)
        names = kidney.annotation_names(r.text())
        self.assertGreater(len(names), 0)

        r = self.get(f"/api/v1/slides/{self.val_id}/versions/latest"
                     "?format=geojson")
        self.assertEqual(r.status, 200)
        doc = r.json()
        self.assertEqual(doc["type"], "FeatureCollection")
        self.assertEqual(len(doc["features"]), len(names))
        props = doc["features"][0]["properties"]
        self.assertIn("classification", props)

    def test_version_unknown_and_bad(self):
        base = f"/api/v1/slides/{self.val_id}/versions"
        self.assertEqual(self.get(base + "/999999").status, 404)
        self.assertEqual(self.get(base + "/abc").status, 400)
        self.assertEqual(self.get(base + "/-1").status, 400)
        self.assertEqual(self.get(base + "/latest?format=pdf").status, 400)

    def test_post_api_and_revert(self):
        sid = self.train_id
        first = self.versions(sid)[0]
        body = asap([("api_posted", square(900, 900, 40))])
        r = self.post(f"/api/v1/slides/{sid}/annotations?x=800&y=800"
                      "&width=300&height=300", body)
        self.assertEqual(r.status, 201, r.body)
        v = r.json()
        self.assertEqual(set(v), {"seq", "time", "path", "previous",
                                  "region", "count"})
        self.assertIsNotNone(v["previous"])

        r = self.post(f"/api/v1/slides/{sid}/versions/{first['seq']}"
                      "/revert", b"")
        self.assertEqual(r.status, 201, r.body)
        reverted = r.json()
        self.assertGreater(reverted["seq"], v["seq"])
        old = self.get(f"/api/v1/slides/{sid}/versions/{first['seq']}")
        new = self.get(f"/api/v1/slides/{sid}/versions/latest")
        self.assertEqual(old.body, new.body)

    def test_revert_unknown(self):
        r = self.post(f"/api/v1/slides/{self.train_id}/versions/999999"
                      "/revert", b"")
        self.assertEqual(r.status, 404)

    def test_post_geojson(self):
        sid = self.train_id
        feature = {"type": "Feature", "geometry": {
            "type": "Polygon", "coordinates": [[[5000, 5000], [5100, 5000],
                                                [5100, 5100], [5000, 5000]]]},
            "properties": {"objectType": "annotation", "name": "from_qupath",
                           "classification": {"name": "Artery",
                                              "color": [217, 203, 17]}}}
        body = json.dumps({"type": "FeatureCollection",
                           "features": [feature]})
        r = self.post(f"/api/v1/slides/{sid}/annotations?x=4900&y=4900"
                      "&width=300&height=300", body,
                      headers={"Content-Type": "application/geo+json"})
        self.assertEqual(r.status, 201, r.body)
        latest = self.get(f"/annotation/{sid}").text()
        self.assertIn("from_qupath", latest)

    def test_routing_prefers_specific_pattern(self):
        # "/slides/{id}.dzi" must win over "/slides/{id}".
        r = self.get(f"/api/v1/slides/{self.val_id}.dzi")
        if r.status == 404 and b"no route" in r.body:
            self.skipTest("tile routes are not built")
        self.assertEqual(r.status, 200, r.body)
        self.assertIn(b"<Image", r.body)

    def test_unknown_route_and_method(self):
        self.assertEqual(self.get("/api/v1/nothing").status, 404)
        r = self.server.request("DELETE", "/api/v1/slides")
        self.assertEqual(r.status, 405)

    def test_request_id_echoed(self):
        r = self.get("/", headers={"X-Request-Id": "test-42"})
        self.assertEqual(r.headers.get("X-Request-Id"), "test-42")

    def test_viewer(self):
        r = self.get("/viewer")
        self.assertEqual(r.status, 301)
        self.assertEqual(r.headers.get("Location"), "/viewer/")
        r = self.get("/viewer/")
        if r.status == 404:
            self.skipTest("the viewer is not built (web/dist)")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.headers["Content-Type"].startswith("text/html"))
        self.assertEqual(self.get("/viewer/../../etc/passwd").status, 404)
        self.assertEqual(self.get("/viewer/%2e%2e/%2e%2e/etc/passwd")
                         .status, 404)



class NoAnnotationTest(unittest.TestCase):
    """A slide registered without an XML file has no version yet."""

    def test_slide_without_annotation(self):
        data_dir, slide_dir, slides = kidney.make_data_dir(["kidney_val"])
        os.unlink(os.path.join(slide_dir, "kidney_val.xml"))
        server, _ = kidney.registered_server(data_dir=data_dir)
        self.addCleanup(server.cleanup)
        server.start()
        sid = slides["kidney_val"][0]

        r = server.get(f"/annotation/{sid}")
        self.assertEqual(r.status, 404)
        self.assertTrue(r.json()["error"])
        r = server.get(f"/api/v1/slides/{sid}/versions")
        self.assertEqual(r.json()["versions"], [])
        self.assertEqual(
            server.get(f"/api/v1/slides/{sid}/versions/latest").status, 404)

        # The first post makes the first version.
        body = asap([("first", square(10, 10, 20))])
        r = server.post(f"/api/v1/slides/{sid}/annotations", body)
        self.assertEqual(r.status, 201, r.body)
        self.assertIsNone(r.json()["previous"])
        names = kidney.annotation_names(server.get(f"/annotation/{sid}")
                                        .text())
        self.assertEqual(names, ["first"])


if __name__ == "__main__":
    unittest.main()
