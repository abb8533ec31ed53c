"""Bearer tokens: with AAPI_API_TOKENS set, writes need one of them and
reads stay open."""
import unittest

import kidney
from kidney import asap, square


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

    def test_reads_open(self):
        self.assertEqual(self.server.get(f"/annotation/{self.sid}").status,
                         200)
        self.assertEqual(self.server.get("/api/v1/slides").status, 200)


if __name__ == "__main__":
    unittest.main()
