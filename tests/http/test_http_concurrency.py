"""N concurrent POSTs on one slide give N versions, none lost: on SQLite,
on MariaDB, and across two server processes sharing one MariaDB."""
import os
import threading
import unittest
import uuid

import kidney
from aapi_server import AapiServer, mysql_url
from kidney import asap, square

N = 20


class ConcurrencyMixin:
    def post_concurrently(self, servers, sid):
        """N threads post one square each, in regions that do not touch,
        alternating between the servers."""
        results = [None] * N

        def post(i):
            server = servers[i % len(servers)]
            x = 1000 + 300 * i
            body = asap([(f"concurrent_{i:02d}", square(x + 10, 10, 50))])
            r = server.post(f"/api/v1/slides/{sid}/annotations?x={x}"
                            "&y=0&width=200&height=200", body)
            results[i] = (r.status, r.body)

        threads = [threading.Thread(target=post, args=(i,))
                   for i in range(N)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for status, body in results:
            self.assertEqual(status, 201, body)

    def check_none_lost(self, server, sid, n_before):
        versions = server.get(
            f"/api/v1/slides/{sid}/versions").json()["versions"]
        self.assertEqual(len(versions), n_before + N)
        # Each version merged onto the one before it: an unbroken chain.
        for older, newer in zip(versions, versions[1:]):
            self.assertEqual(newer["previous"], older["seq"])
        names = kidney.annotation_names(
            server.get(f"/annotation/{sid}").text())
        for i in range(N):
            self.assertIn(f"concurrent_{i:02d}", names)

    def run_case(self, servers, sid):
        n_before = len(servers[0].get(
            f"/api/v1/slides/{sid}/versions").json()["versions"])
        self.post_concurrently(servers, sid)
        for server in servers:
            self.check_none_lost(server, sid, n_before)


class SqliteConcurrencyTest(ConcurrencyMixin, unittest.TestCase):
    def test_concurrent_posts(self):
        server, slides = kidney.registered_server(["kidney_val"])
        self.addCleanup(server.cleanup)
        server.start()
        self.run_case([server], slides["kidney_val"][0])


class MariadbConcurrencyTest(ConcurrencyMixin, unittest.TestCase):
    def database(self):
        return mysql_url("aapi_http_" + uuid.uuid4().hex[:12])

    def test_concurrent_posts(self):
        server, slides = kidney.registered_server(
            ["kidney_val"], database_url=self.database())
        self.addCleanup(server.cleanup)
        server.start()
        self.assertEqual(server.get("/api/v1/health").json()["database"],
                         "mysql")
        self.run_case([server], slides["kidney_val"][0])

    def test_two_processes(self):
        url = self.database()
        first, slides = kidney.registered_server(["kidney_val"],
                                                 database_url=url)
        self.addCleanup(first.cleanup)
        # The second process shares the data dir and the database.
        second = AapiServer(data_dir=first.data_dir, database_url=url)
        self.addCleanup(second.stop)
        second.log_path = os.path.join(first.data_dir, "server2.log")
        first.start()
        second.start()
        self.run_case([first, second], slides["kidney_val"][0])


if __name__ == "__main__":
    unittest.main()
