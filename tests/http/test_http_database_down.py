"""A MariaDB server that goes away under a running aapi: requests that need
the database get 503 with the reason (never a crash, never a 500), and
once the database is back the same server answers again with everything
it had stored.  The test runs its own MariaDB server (the shared one of
`make test` serves other tests meanwhile)."""
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import unittest

import kidney
from aapi_server import free_port
from kidney import asap, square

MARIADBD = "/usr/sbin/mariadbd"
USER = pwd.getpwuid(os.getuid()).pw_name


class PrivateMariadb:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="aapi-dbdown-")
        self.port = free_port()
        self.process = None
        subprocess.run(
            ["mariadb-install-db", "--no-defaults",
             f"--user={USER}",
             f"--datadir={self.dir}/data",
             "--auth-root-authentication-method=normal", "--skip-test-db"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self):
        self.process = subprocess.Popen(
            [MARIADBD, "--no-defaults", f"--user={USER}",
             f"--datadir={self.dir}/data", f"--socket={self.dir}/sock",
             f"--pid-file={self.dir}/pid", "--bind-address=127.0.0.1",
             f"--port={self.port}", "--skip-name-resolve",
             "--innodb-buffer-pool-size=32M",
             f"--log-error={self.dir}/error.log"])
        for _ in range(150):
            if subprocess.run(
                    ["mariadb", "--no-defaults", f"--socket={self.dir}/sock",
                     "-uroot", "-e", "SELECT 1"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL).returncode == 0:
                return
            time.sleep(0.2)
        raise AssertionError("private MariaDB did not start")

    def stop(self):
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=60)
            self.process = None

    def sql(self, text):
        subprocess.run(["mariadb", "--no-defaults",
                        f"--socket={self.dir}/sock", "-uroot", "-e", text],
                       check=True)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@unittest.skipUnless(os.path.exists(MARIADBD) and shutil.which(
    "mariadb-install-db"), "no MariaDB server installed (make test installs "
    "it)")
class DatabaseDownTest(unittest.TestCase):
    def setUp(self):
        self.db = PrivateMariadb()
        self.addCleanup(self.db.cleanup)
        self.db.start()
        self.db.sql("CREATE USER 'aapi'@'127.0.0.1' IDENTIFIED BY 'pw';"
                    "GRANT ALL PRIVILEGES ON *.* TO 'aapi'@'127.0.0.1';")
        url = f"mysql://aapi:pw@127.0.0.1:{self.db.port}/aapi_down"
        self.server, self.slides = kidney.registered_server(
            ["kidney_val"], database_url=url)
        self.addCleanup(self.server.cleanup)
        self.server.start()
        self.sid = self.slides["kidney_val"][0]

    def post(self, name):
        return self.server.post(
            f"/api/v1/slides/{self.sid}/annotations?x=0&y=0&width=900"
            "&height=900", asap([(name, square(100, 100, 50))]))

    def test_database_away_and_back(self):
        r = self.post("before")
        self.assertEqual(r.status, 201, r.body)
        versions = self.server.get(
            f"/api/v1/slides/{self.sid}/versions").json()["versions"]

        self.db.stop()
        # Several requests in a row: the first finds the session gone, the
        # next ones find no session at all (where the server used to
        # crash).
        for path in ["/api/v1/health", "/api/v1/slides",
                     f"/api/v1/slides/{self.sid}/versions",
                     "/api/v1/slides"]:
            r = self.server.get(path)
            self.assertEqual(r.status, 503, (path, r.body))
            self.assertIn("database", r.json()["error"])
        r = self.post("while-down")
        self.assertEqual(r.status, 503, r.body)
        self.assertIsNone(self.server.process.poll(), self.server.log())

        self.db.start()
        r = self.server.get("/api/v1/health")
        self.assertEqual(r.status, 200, r.body)
        after = self.server.get(
            f"/api/v1/slides/{self.sid}/versions").json()["versions"]
        self.assertEqual(after, versions)
        r = self.post("after")
        self.assertEqual(r.status, 201, r.body)
        names = kidney.annotation_names(
            self.server.get(f"/annotation/{self.sid}").text())
        self.assertIn("after", names)
        self.assertNotIn("while-down", names)


if __name__ == "__main__":
    unittest.main()
