"""Crash reconciliation: kill -9 the server, plant an orphan version file
(a file without a row, as a crash between file and row leaves), restart:
the orphan is gone and every version is intact."""
import os
import unittest

import kidney
from kidney import asap, square


class ReconcileTest(unittest.TestCase):
    def test_orphan_removed_after_crash(self):
        server, slides = kidney.registered_server(["kidney_val"])
        self.addCleanup(server.cleanup)
        sid = slides["kidney_val"][0]
        server.start()
        r = server.post(f"/api/v1/slides/{sid}/annotations?x=0&y=0"
                        "&width=500&height=500",
                        asap([("before_crash", square(10, 10, 40))]))
        self.assertEqual(r.status, 201, r.body)
        newest = r.json()
        versions = server.get(f"/api/v1/slides/{sid}/versions").json()
        latest = server.get(f"/annotation/{sid}").body
        server.kill()

        # A version file written just before the crash, with no row.
        folder = os.path.dirname(newest["path"])
        if not os.path.isabs(folder):
            folder = os.path.join(server.data_dir, folder)
        name = os.path.basename(newest["path"])
        orphan = os.path.join(folder, "updated_at_" + "9" * 10 + "_orphan"
                              + os.path.splitext(name)[1])
        with open(orphan, "w") as f:
            f.write(asap([("orphan", square(1, 1, 2))]))

        server.start()
        self.assertFalse(os.path.exists(orphan), "orphan left in place")
        self.assertEqual(
            server.get(f"/api/v1/slides/{sid}/versions").json(), versions)
        self.assertEqual(server.get(f"/annotation/{sid}").body, latest)


if __name__ == "__main__":
    unittest.main()
