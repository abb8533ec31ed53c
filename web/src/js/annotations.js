// The page's annotation model: reading the server's GeoJSON, and writing
// the ASAP XML (or, for shapes ASAP cannot hold, GeoJSON) that a save posts.
//
// An annotation here is
//   { uid, name, type, group, color, parts, box, state }
// where parts is a list of polygons, each a list of rings (outer first,
// then holes), each ring a list of [x, y] level-0 points without the
// repeated closing point; state is "saved" (from the server), "new"
// (drawn or accepted, not yet saved) or "predicted" (shown, not accepted).

import { ringBox, unionBox } from "./geometry.js";

// The label config's default classes; the page learns others from the
// annotations and models it loads.
export const DEFAULT_CLASSES = [
  { name: "Glomerulus", color: "#4dd156" },
  { name: "Artery", color: "#d9cb11" },
  { name: "Tubules", color: "#e89f17" },
  { name: "Arteriole", color: "#1eaac9" },
];

let nextUid = 1;

export function makeAnnotation(fields) {
  const a = {
    uid: nextUid++,
    name: fields.name || "",
    type: fields.type || "Polygon",
    group: fields.group || "None",
    color: normaliseColor(fields.color) || "#ff00ff",
    parts: fields.parts,
    state: fields.state || "saved",
    cache: new Map(),
  };
  a.box = unionBox(a.parts.map((p) => ringBox(p[0])));
  return a;
}

export function normaliseColor(c) {
  if (Array.isArray(c) && c.length >= 3) {
    return "#" + c.slice(0, 3).map((v) =>
      Math.max(0, Math.min(255, v | 0)).toString(16).padStart(2, "0")
    ).join("");
  }
  if (typeof c === "number") {
    // QuPath packs colours as a signed 32-bit ARGB integer.
    return normaliseColor([(c >> 16) & 255, (c >> 8) & 255, c & 255]);
  }
  if (typeof c === "string" && /^#[0-9a-fA-F]{6}$/.test(c)) {
    return c.toLowerCase();
  }
  return null;
}

// GeoJSON rings repeat their first point at the end; ours do not.
function openRing(ring) {
  const pts = ring.map(([x, y]) => [Number(x), Number(y)]);
  const n = pts.length;
  if (n > 1 && pts[0][0] === pts[n - 1][0] && pts[0][1] === pts[n - 1][1]) {
    pts.pop();
  }
  return pts;
}

function geometryParts(geometry) {
  switch (geometry && geometry.type) {
    case "Polygon":
      return { type: "Polygon", parts: [geometry.coordinates.map(openRing)] };
    case "MultiPolygon":
      return {
        type: "Polygon",
        parts: geometry.coordinates.map((p) => p.map(openRing)),
      };
    case "LineString":
      return { type: "Spline", parts: [[openRing(geometry.coordinates)]] };
    case "Point":
      return { type: "Dot", parts: [[[geometry.coordinates.slice(0, 2)]]] };
    case "MultiPoint":
      return { type: "PointSet", parts: [[geometry.coordinates.map(
        (c) => c.slice(0, 2))]] };
    default:
      return null;
  }
}

// Reads a FeatureCollection (or QuPath's bare feature array).  classColor
// maps a class name to its colour when a feature carries none.
export function readGeoJSON(doc, state, classColor) {
  const features = Array.isArray(doc) ? doc : (doc.features || []);
  const out = [];
  for (const f of features) {
    const g = geometryParts(f.geometry);
    if (!g || g.parts.length === 0 || g.parts[0][0].length === 0) continue;
    const props = f.properties || {};
    const cls = props.classification || {};
    const group = cls.name || props.group || props.PartOfGroup || "None";
    out.push(makeAnnotation({
      name: props.name || f.id || "",
      type: props.type || props.annotationType || g.type,
      group,
      color: normaliseColor(cls.color) || normaliseColor(props.color) ||
        classColor(group),
      parts: g.parts,
      state,
    }));
  }
  return out;
}

function escapeXml(s) {
  return String(s).replace(/[<>&"']/g, (c) => ({
    "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;",
  })[c]);
}

// Coordinates as plain decimals; no exponents, which ASAP readers refuse.
function decimal(v) {
  const s = Number(v).toFixed(3).replace(/\.?0+$/, "");
  return s === "-0" ? "0" : s;
}

// ASAP XML of annotations (outer rings only) and the class groups.
export function writeAsap(annotations, groups) {
  const lines = ['<?xml version="1.0" encoding="UTF-8"?>',
    "<ASAP_Annotations>", "  <Annotations>"];
  for (const a of annotations) {
    lines.push(`    <Annotation Name="${escapeXml(a.name)}" ` +
      `Type="${escapeXml(a.type)}" PartOfGroup="${escapeXml(a.group)}" ` +
      `Color="${escapeXml(a.color)}">`);
    lines.push("      <Coordinates>");
    a.parts[0][0].forEach(([x, y], i) => {
      lines.push(`        <Coordinate Order="${i}" X="${decimal(x)}" ` +
        `Y="${decimal(y)}"/>`);
    });
    lines.push("      </Coordinates>", "    </Annotation>");
  }
  lines.push("  </Annotations>", "  <AnnotationGroups>");
  for (const g of groups) {
    lines.push(`    <Group Name="${escapeXml(g.name)}" PartOfGroup="None" ` +
      `Color="${escapeXml(g.color)}">`);
    lines.push("      <Attributes/>", "    </Group>");
  }
  lines.push("  </AnnotationGroups>", "</ASAP_Annotations>", "");
  return lines.join("\n");
}

function closedRing(ring) {
  return ring.concat([ring[0]]);
}

function featureOf(a) {
  const rgb = [1, 3, 5].map((i) => parseInt(a.color.slice(i, i + 2), 16));
  const polygons = a.parts.map((p) => p.map(closedRing));
  return {
    type: "Feature",
    geometry: polygons.length === 1
      ? { type: "Polygon", coordinates: polygons[0] }
      : { type: "MultiPolygon", coordinates: polygons },
    properties: {
      objectType: "annotation",
      name: a.name,
      classification: { name: a.group, color: rgb },
    },
  };
}

// ASAP holds one outer ring per annotation; holes and multi-part shapes
// need GeoJSON, which the same POST accepts.
export function needsGeoJSON(annotations) {
  return annotations.some((a) => a.type === "Polygon" &&
    (a.parts.length > 1 || a.parts[0].length > 1));
}

export function writeGeoJSON(annotations) {
  return JSON.stringify({
    type: "FeatureCollection",
    features: annotations.map(featureOf),
  });
}

// Body and content type of a save of these annotations.
export function saveBody(annotations, groups) {
  if (needsGeoJSON(annotations)) {
    return { body: writeGeoJSON(annotations),
      contentType: "application/geo+json" };
  }
  return { body: writeAsap(annotations, groups),
    contentType: "application/xml" };
}
