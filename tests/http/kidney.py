"""Shared set-up of the HTTP tests: a temporary data dir whose slide dir
holds symlinks to the real kidney slides and their ASAP XML, registered
with `aapi init-db` and `aapi init-data` as a user would."""
import os
import re
import tempfile

from aapi_server import AapiServer, shared_path, slide_id

SLIDES = ("kidney_train", "kidney_val")


def make_data_dir(names=SLIDES):
    """A temp data dir with <data>/slides/<name>.{svs,xml} symlinked;
    returns (data_dir, slide_dir, {name: (id, svs, xml)})."""
    data_dir = tempfile.mkdtemp(prefix="aapi-http-")
    slide_dir = os.path.join(data_dir, "slides")
    os.makedirs(slide_dir)
    slides = {}
    for name in names:
        svs = shared_path(f"data/slides/{name}.svs")
        xml = shared_path(f"data/slides/{name}.xml")
        os.symlink(svs, os.path.join(slide_dir, name + ".svs"))
        os.symlink(xml, os.path.join(slide_dir, name + ".xml"))
        slides[name] = (slide_id(svs), svs, xml)
    return data_dir, slide_dir, slides


def registered_server(names=SLIDES, database_url=None, env=None,
                      data_dir=None):
    """An AapiServer (not started) over a data dir with the slides
    registered; the caller starts it and calls cleanup()."""
    if data_dir is None:
        data_dir, slide_dir, slides = make_data_dir(names)
    else:
        slide_dir = os.path.join(data_dir, "slides")
        slides = None
    server = AapiServer(data_dir=data_dir, database_url=database_url,
                        env=env)
    server.owned_dir = True
    server.aapi("init-db")
    server.aapi("init-data", "--slide-dir", slide_dir)
    return server, slides


def asap(annotations, group="Glomerulus", color="#4dd156"):
    """A small ASAP document: annotations is [(name, [(x, y)...])]."""
    parts = ['<?xml version="1.0"?>\n<ASAP_Annotations><Annotations>']
    for name, points in annotations:
        parts.append(f'<Annotation Name="{name}" Type="Polygon" '
                     f'PartOfGroup="{group}" Color="{color}"><Coordinates>')
        for order, (x, y) in enumerate(points):
            parts.append(f'<Coordinate Order="{order}" X="{x}" Y="{y}"/>')
        parts.append('</Coordinates></Annotation>')
    parts.append(f'</Annotations><AnnotationGroups><Group Name="{group}" '
                 f'PartOfGroup="None" Color="{color}"><Attributes/>'
                 '</Group></AnnotationGroups></ASAP_Annotations>\n')
    return "".join(parts)


def square(x, y, size):
    return [(x, y), (x + size, y), (x + size, y + size), (x, y + size)]


def annotation_names(xml_text):
    return re.findall(r'<Annotation\b[^>]*\bName="([^"]*)"', xml_text)
