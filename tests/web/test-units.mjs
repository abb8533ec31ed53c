// Unit tests of the viewer's modules that need no browser: geometry, the
// GeoJSON reader, the ASAP XML writer and the editor's pending changes.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  makeAnnotation, readGeoJSON, saveBody, writeAsap,
} from "../../web/src/js/annotations.js";
import { Editor } from "../../web/src/js/editor.js";
import {
  clampRegion, ringContains, simplifyRing,
} from "../../web/src/js/geometry.js";
import { SlideTransform } from "../../web/src/js/overlay.js";

const square = (x, y, s) => [[x, y], [x + s, y], [x + s, y + s], [x, y + s]];

function poly(name, ring, state = "saved", group = "Glomerulus") {
  return makeAnnotation({ name, group, color: "#4dd156", parts: [[ring]],
    state });
}

test("clampRegion keeps the part inside the slide, in whole pixels", () => {
  assert.deepEqual(clampRegion({ x: -10.5, y: 5.2, width: 100, height: 50 },
    80, 40), { x: 0, y: 5, width: 80, height: 35 });
  assert.equal(clampRegion({ x: 90, y: 0, width: 5, height: 5 }, 80, 40),
    null);
});

test("simplifyRing drops close vertices and keeps the ends", () => {
  const ring = [];
  for (let i = 0; i <= 100; i++) ring.push([i, 0]);
  ring.push([100, 50], [0, 50]);
  const out = simplifyRing(ring, 10);
  assert.ok(out.length < 20, `${out.length} vertices`);
  assert.deepEqual(out[0], [0, 0]);
  assert.deepEqual(out[out.length - 1], [0, 50]);
  assert.equal(simplifyRing(square(0, 0, 1), 10).length, 4);
});

test("ringContains", () => {
  assert.ok(ringContains(square(0, 0, 10), 5, 5));
  assert.ok(!ringContains(square(0, 0, 10), 15, 5));
});

test("readGeoJSON opens rings and takes the class colour", () => {
  const doc = { type: "FeatureCollection", features: [
    { type: "Feature", geometry: { type: "Polygon",
      coordinates: [[[0, 0], [10, 0], [10, 10], [0, 0]]] },
    properties: { name: "A_000", classification: { name: "Artery",
      color: [217, 203, 17] } } },
    { type: "Feature", geometry: { type: "MultiPolygon", coordinates: [
      [[[0, 0], [1, 0], [1, 1], [0, 0]]], [[[5, 5], [6, 5], [6, 6], [5, 5]]],
    ] }, properties: { name: "M", classification: { name: "Tubules" } } },
    { type: "Feature", geometry: null, properties: {} },
  ] };
  const list = readGeoJSON(doc, "saved",
    (n) => (n === "Tubules" ? "#e89f17" : null));
  assert.equal(list.length, 2);
  assert.equal(list[0].color, "#d9cb11");
  assert.deepEqual(list[0].parts[0][0], [[0, 0], [10, 0], [10, 10]]);
  assert.equal(list[1].color, "#e89f17");
  assert.equal(list[1].parts.length, 2);
  assert.deepEqual(list[1].box, { x0: 0, y0: 0, x1: 6, y1: 6 });
});

test("writeAsap escapes attributes and writes plain decimals", () => {
  const a = makeAnnotation({ name: 'a "b" <&>', group: "Artery",
    color: "#D9CB11", parts: [[[[1e-9, 2.5], [1234567.125, 3], [4, 5]]]] });
  const xml = writeAsap([a], [{ name: "Artery", color: "#d9cb11" }]);
  assert.match(xml, /Name="a &quot;b&quot; &lt;&amp;&gt;"/);
  assert.match(xml, /PartOfGroup="Artery" Color="#d9cb11"/);
  assert.match(xml, /<Coordinate Order="0" X="0" Y="2.5"\/>/);
  assert.match(xml, /<Coordinate Order="1" X="1234567.125" Y="3"\/>/);
  assert.match(xml, /<Group Name="Artery" PartOfGroup="None" Color="#d9cb11">\s*<Attributes\/>/);
  assert.doesNotMatch(xml, /e[-+]\d/);
});

test("saveBody uses GeoJSON only for shapes ASAP cannot hold", () => {
  const plain = poly("p", square(0, 0, 10));
  assert.equal(saveBody([plain], []).contentType, "application/xml");
  const holed = makeAnnotation({ name: "h", group: "G", color: "#000000",
    parts: [[square(0, 0, 10), square(2, 2, 2)]] });
  const body = saveBody([plain, holed], []);
  assert.equal(body.contentType, "application/geo+json");
  const doc = JSON.parse(body.body);
  assert.equal(doc.features[1].geometry.coordinates.length, 2);
  assert.deepEqual(doc.features[0].geometry.coordinates[0][4], [0, 0]);
});

test("the editor saves what touches the region, never predictions", () => {
  const ed = new Editor(() => {});
  ed.load([poly("Glomerulus_000", square(0, 0, 10)),
    poly("Glomerulus_001", square(100, 100, 10))]);
  ed.addPredictions([poly("P", square(2, 2, 3), "predicted")],
    { x: 0, y: 0, width: 20, height: 20 });
  const names = ed.toSave({ x: 0, y: 0, width: 20, height: 20 })
    .map((a) => a.name);
  assert.deepEqual(names, ["Glomerulus_000"]);
  assert.equal(ed.nextName("Glomerulus"), "Glomerulus_002");
  ed.acceptAll();
  assert.equal(ed.pending().added, 1);
});

test("hitTest picks the smallest polygon containing the point", () => {
  const ed = new Editor(() => {});
  const big = poly("big", square(0, 0, 100));
  const small = poly("small", square(40, 40, 10));
  ed.load([big, small]);
  assert.equal(ed.hitTest(45, 45, 1), small);
  assert.equal(ed.hitTest(10, 10, 1), big);
  assert.equal(ed.hitTest(100.5, 50, 1), big);
  assert.equal(ed.hitTest(300, 300, 1), null);
});

test("after a save, edits outside the region stay pending", () => {
  const ed = new Editor(() => {});
  const inside = poly("Glomerulus_000", square(0, 0, 10));
  const outside = poly("Glomerulus_001", square(500, 500, 10));
  ed.load([inside, outside]);
  ed.remove(inside);
  ed.remove(outside);
  ed.startDraft();
  for (const [x, y] of square(900, 900, 20)) ed.addVertex(x, y, 1);
  ed.closeDraft();
  assert.deepEqual(ed.pending(), { added: 1, deleted: 2 });
  const save = ed.startSave({ x: 0, y: 0, width: 50, height: 50 });
  // Drawn while the save runs, inside its region: not carried by it.
  ed.startDraft();
  for (const [x, y] of square(10, 10, 20)) ed.addVertex(x, y, 1);
  const late = ed.closeDraft();
  // The server's new version: inside gone, outside still there.
  const reloaded = [poly("Glomerulus_001", square(500, 500, 10))];
  ed.reloadKeeping(reloaded, save);
  assert.deepEqual(ed.pending(), { added: 2, deleted: 1 });
  assert.deepEqual(ed.annotations.map((a) => a.state), ["new", "new"]);
  assert.ok(ed.annotations.includes(late));
});

test("a double-click's second click adds no vertex", () => {
  const ed = new Editor(() => {});
  ed.startDraft();
  ed.addVertex(0, 0, 4);
  ed.addVertex(1, 1, 4);
  ed.addVertex(10, 0, 4);
  assert.equal(ed.draft.points.length, 2);
  assert.equal(ed.closeDraft(), null);
});

// A stand-in for OpenSeadragon: the Deep Zoom image is 2000 px wide and
// shown at half size, its top-left corner at element pixel (30, 40).
function fakeViewer() {
  const item = {
    imageToViewportCoordinates: (x, y) => ({ x: x / 2000, y: y / 2000 }),
  };
  return {
    world: { getItemAt: () => item },
    viewport: {
      pixelFromPoint: (p) => ({ x: 30 + p.x * 1000, y: 40 + p.y * 1000 }),
    },
    element: { clientWidth: 500, clientHeight: 400 },
  };
}

test("level-0 points are shifted by the slide's bounds", () => {
  const t = new SlideTransform(fakeViewer(), { x: 300, y: 500 });
  assert.deepEqual(t.toElement(300, 500), { x: 30, y: 40 });
  assert.deepEqual(t.toElement(500, 900), { x: 130, y: 240 });
  assert.deepEqual(t.toLevel0(130, 240), { x: 500, y: 900 });
  assert.deepEqual(t.viewRegion(), { x: 240, y: 420, width: 1000,
    height: 800 });
  const plain = new SlideTransform(fakeViewer(), { x: 0, y: 0 });
  assert.deepEqual(plain.toElement(0, 0), { x: 30, y: 40 });
});
