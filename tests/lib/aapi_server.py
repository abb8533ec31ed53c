"""Starts a real `aapi serve` on a free loopback port for integration tests.

Only the standard library is used, so the tests run on Debian's python3
without extra modules.
"""
import hashlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))


# Training settings that keep a test's cycle to seconds: a small network,
# few patches, no cycle of the server's own.
SMALL_TRAINING = {
    "AAPI_BOOTSTRAP_DEPTH": "2",
    "AAPI_BOOTSTRAP_WF": "2",
    "AAPI_TRAIN_EPOCHS": "1",
    "AAPI_TRAIN_BATCH": "4",
    "AAPI_TRAIN_MAX_PATCHES": "8",
    "AAPI_TRAIN_INTERVAL": "0",
}


def aapi_binary():
    """Path of the aapi binary under test (meson passes AAPI_BINARY)."""
    return os.environ.get("AAPI_BINARY",
                          os.path.join(TOP, "build-test", "aapi"))


def shared_path(relative):
    """Absolute path under ../shared, or raise SkipTest naming it."""
    base = os.environ.get("AAPI_SHARED_DIR",
                          os.path.join(TOP, "..", "shared"))
    path = os.path.join(base, relative)
    if not os.path.exists(path):
        raise unittest.SkipTest(
            f"test data {path} is absent (set AAPI_SHARED_DIR)")
    return path


def slide_id(path):
    """The id aapi gives a slide: MD5 of the file's bytes."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def mysql_url(database):
    """URL of a database on the test MariaDB server, or raise SkipTest."""
    base = os.environ.get("AAPI_TEST_MYSQL_URL")
    if not base:
        raise unittest.SkipTest(
            "no MariaDB test server (AAPI_TEST_MYSQL_URL unset; "
            "make test starts one)")
    return f"{base}/{database}"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_aapi(args, env=None, check=True, timeout=600):
    """Runs an aapi subcommand; returns the CompletedProcess."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    result = subprocess.run([aapi_binary()] + list(args), env=full_env,
                            capture_output=True, text=True,
                            timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(
            f"aapi {' '.join(args)} exited {result.returncode}:\n"
            f"{result.stdout}\n{result.stderr}")
    return result


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def text(self):
        return self.body.decode("utf-8")


class AapiServer:
    """One `aapi serve` process with its own data dir (or a given one)."""

    def __init__(self, data_dir=None, database_url=None, env=None):
        self.owned_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="aapi-test-")
        self.env = dict(os.environ)
        self.env["AAPI_DATA_DIR"] = self.data_dir
        self.env.setdefault("AAPI_MODEL_DIR",
                            os.path.join(self.data_dir, "model"))
        if database_url:
            self.env["AAPI_DATABASE_URL"] = database_url
        self.env.update(env or {})
        self.port = None
        self.process = None
        self.log_path = os.path.join(self.data_dir, "server.log")

    def aapi(self, *args, check=True):
        return run_aapi(args, env=self.env, check=check)

    def start(self, timeout=60):
        self.port = free_port()
        self.env["AAPI_PORT"] = str(self.port)
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [aapi_binary(), "serve", "--port", str(self.port)],
            env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"aapi serve exited {self.process.returncode}:\n"
                    + self.log())
            try:
                if self.request("GET", "/api/v1/health").status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError("aapi serve did not answer:\n" + self.log())

    def log(self):
        try:
            with open(self.log_path, encoding="utf-8",
                      errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self):
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def cleanup(self):
        self.stop()
        if self.owned_dir and os.environ.get("AAPI_KEEP_TMP") != "1":
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def request(self, method, path, body=None, headers=None, timeout=600):
        conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                          timeout=timeout)
        try:
            if isinstance(body, str):
                body = body.encode("utf-8")
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return Response(resp.status, dict(resp.getheaders()),
                            resp.read())
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body, **kw):
        return self.request("POST", path, body=body, **kw)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()
