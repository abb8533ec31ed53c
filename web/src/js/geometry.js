// Plain geometry on level-0 pixel coordinates: bounding boxes, hit tests
// and the simplification used when a polygon is drawn at low zoom.

// Bounding box {x0, y0, x1, y1} of a list of [x, y] points.
export function ringBox(points) {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const [x, y] of points) {
    if (x < x0) x0 = x;
    if (x > x1) x1 = x;
    if (y < y0) y0 = y;
    if (y > y1) y1 = y;
  }
  return { x0, y0, x1, y1 };
}

// Union of boxes; an empty list gives an empty (inverted) box.
export function unionBox(boxes) {
  const out = { x0: Infinity, y0: Infinity, x1: -Infinity, y1: -Infinity };
  for (const b of boxes) {
    out.x0 = Math.min(out.x0, b.x0);
    out.y0 = Math.min(out.y0, b.y0);
    out.x1 = Math.max(out.x1, b.x1);
    out.y1 = Math.max(out.y1, b.y1);
  }
  return out;
}

// Whether two boxes overlap; touching counts, as in the server's merge.
export function boxesTouch(a, b) {
  return a.x0 <= b.x1 && b.x0 <= a.x1 && a.y0 <= b.y1 && b.y0 <= a.y1;
}

export function boxContains(b, x, y) {
  return x >= b.x0 && x <= b.x1 && y >= b.y0 && y <= b.y1;
}

// Even-odd point in ring test.
export function ringContains(ring, x, y) {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [xi, yi] = ring[i];
    const [xj, yj] = ring[j];
    if ((yi > y) !== (yj > y) &&
        x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) {
      inside = !inside;
    }
  }
  return inside;
}

// Shortest distance from (x, y) to the ring's outline.
export function ringDistance(ring, x, y) {
  let best = Infinity;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    best = Math.min(best, segmentDistance(ring[j], ring[i], x, y));
  }
  return best;
}

function segmentDistance([ax, ay], [bx, by], x, y) {
  const dx = bx - ax, dy = by - ay;
  const len2 = dx * dx + dy * dy;
  let t = len2 > 0 ? ((x - ax) * dx + (y - ay) * dy) / len2 : 0;
  t = Math.max(0, Math.min(1, t));
  return Math.hypot(ax + t * dx - x, ay + t * dy - y);
}

// Absolute area of a ring by the shoelace formula.
export function ringArea(ring) {
  let sum = 0;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    sum += (ring[j][0] + ring[i][0]) * (ring[j][1] - ring[i][1]);
  }
  return Math.abs(sum) / 2;
}

// Drops vertices closer than tolerance to the last kept one.  A single
// linear pass is enough at low zoom, where a vertex closer than a screen
// pixel to its neighbour cannot be seen anyway, and it keeps the redraw
// cost proportional to what is visible rather than to the vertex count.
export function simplifyRing(ring, tolerance) {
  if (ring.length <= 4 || tolerance <= 0) return ring;
  const t2 = tolerance * tolerance;
  const out = [ring[0]];
  let [px, py] = ring[0];
  for (let i = 1; i < ring.length - 1; i++) {
    const [x, y] = ring[i];
    const dx = x - px, dy = y - py;
    if (dx * dx + dy * dy >= t2) {
      out.push(ring[i]);
      px = x;
      py = y;
    }
  }
  out.push(ring[ring.length - 1]);
  return out.length >= 3 ? out : ring;
}

// Intersection of a box {x, y, width, height} with [0, w) x [0, h), in
// whole pixels; null when nothing is left.
export function clampRegion(region, w, h) {
  const x0 = Math.max(0, Math.floor(region.x));
  const y0 = Math.max(0, Math.floor(region.y));
  const x1 = Math.min(w, Math.ceil(region.x + region.width));
  const y1 = Math.min(h, Math.ceil(region.y + region.height));
  if (x1 <= x0 || y1 <= y0) return null;
  return { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
}

export function regionBox(r) {
  return { x0: r.x, y0: r.y, x1: r.x + r.width, y1: r.y + r.height };
}
