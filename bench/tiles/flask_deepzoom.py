"""The baseline: Deep Zoom tiles the way the Python tools serve them,
openslide-python's DeepZoomGenerator behind a threaded Flask server.

    /usr/bin/python3 flask_deepzoom.py SLIDE PORT

GET /slide.dzi and GET /slide_files/<level>/<col>_<row>.<jpeg|png>, tile
size 254, overlap 1, JPEG quality 75 (aapi's defaults), no tile cache.
"""
import io
import sys

from flask import Flask, abort, make_response
from openslide import OpenSlide
from openslide.deepzoom import DeepZoomGenerator

TILE_SIZE = 254
OVERLAP = 1
QUALITY = 75


def create_app(path):
    app = Flask(__name__)
    slide = OpenSlide(path)
    dz = DeepZoomGenerator(slide, TILE_SIZE, OVERLAP, limit_bounds=True)

    @app.route("/slide.dzi")
    def dzi():
        resp = make_response(dz.get_dzi("jpeg"))
        resp.mimetype = "application/xml"
        return resp

    @app.route("/slide_files/<int:level>/<int:col>_<int:row>.<fmt>")
    def tile(level, col, row, fmt):
        if fmt not in ("jpeg", "png"):
            abort(404)
        try:
            image = dz.get_tile(level, (col, row))
        except ValueError:
            abort(404)
        buf = io.BytesIO()
        image.save(buf, fmt, quality=QUALITY)
        resp = make_response(buf.getvalue())
        resp.mimetype = "image/" + fmt
        return resp

    return app


if __name__ == "__main__":
    create_app(sys.argv[1]).run(host="127.0.0.1", port=int(sys.argv[2]),
                                threaded=True)
