// The annotation overlay: one canvas over OpenSeadragon, redrawn whenever
// the viewport moves.  Polygons outside the view are culled by bounding
// box, polygons are simplified to about a screen pixel at low zoom, and
// polygons of the same colour and state share one path, so thousands of
// polygons cost a few canvas calls per frame instead of one DOM node each.

import { boxesTouch, simplifyRing } from "./geometry.js";

// Deep Zoom image coordinates start at the slide's bounds (where its
// content lies), so level-0 points are shifted by the bounds origin.
export class SlideTransform {
  constructor(viewer, bounds) {
    this.viewer = viewer;
    this.bx = bounds ? bounds.x : 0;
    this.by = bounds ? bounds.y : 0;
  }

  item() {
    return this.viewer.world.getItemAt(0);
  }

  // The current (animated) map level-0 -> element pixels, as
  // ex = x * s + ox, ey = y * s + oy.  Rotation is off in this viewer.
  affine() {
    const item = this.item();
    if (!item) return null;
    const vp = this.viewer.viewport;
    const a = vp.pixelFromPoint(item.imageToViewportCoordinates(0, 0, true),
      true);
    const b = vp.pixelFromPoint(
      item.imageToViewportCoordinates(1e4, 0, true), true);
    const s = (b.x - a.x) / 1e4;
    return { s, ox: a.x - this.bx * s, oy: a.y - this.by * s };
  }

  toElement(x, y) {
    const t = this.affine();
    return { x: x * t.s + t.ox, y: y * t.s + t.oy };
  }

  toLevel0(ex, ey) {
    const t = this.affine();
    return { x: (ex - t.ox) / t.s, y: (ey - t.oy) / t.s };
  }

  // The element's visible area in level-0 pixels (not clamped).
  viewRegion() {
    const el = this.viewer.element;
    const p = this.toLevel0(0, 0);
    const q = this.toLevel0(el.clientWidth, el.clientHeight);
    return { x: p.x, y: p.y, width: q.x - p.x, height: q.y - p.y };
  }

  // Where the viewport is heading, for actions taken mid-animation.
  targetRegion() {
    const item = this.item();
    const r = item.viewportToImageRectangle(
      this.viewer.viewport.getBounds(false), false);
    return { x: r.x + this.bx, y: r.y + this.by, width: r.width,
      height: r.height };
  }

  // Moves the view to show a level-0 box.
  fitLevel0(box, immediately) {
    const r = this.item().imageToViewportRectangle(box.x - this.bx,
      box.y - this.by, box.width, box.height);
    this.viewer.viewport.fitBounds(r, immediately);
  }
}

// Vertices closer than about this many screen pixels (within a factor of
// two: the tolerance is a power of two in level-0 pixels, so that each
// annotation caches a few levels only) are merged when drawing.
const SIMPLIFY_PIXELS = 2;
// Above this many segments a drawing is too slow to repeat at every frame
// of an animation (software rendering takes ~50 ms), so frames reuse it.
const HEAVY_SEGMENTS = 30000;
// Annotations smaller than this on screen are drawn as their box.
const TINY_PIXELS = 6;
// Segments per canvas path before it is painted and a new one begun.
const PATH_SEGMENTS = 4000;

const STYLES = {
  saved: { width: 2, fill: 0.12, dash: null },
  new: { width: 3, fill: 0.25, dash: null },
  predicted: { width: 2, fill: 0.06, dash: [9, 6] },
};

function hexRgba(hex, alpha) {
  const v = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  return `rgba(${v[0]},${v[1]},${v[2]},${alpha})`;
}

export class Overlay {
  constructor(viewer, transform, model) {
    this.viewer = viewer;
    this.transform = transform;
    this.model = model;           // { annotations, selected, draft }
    this.visible = true;
    this.pending = false;
    this.stats = { drawn: 0, culled: 0 };
    this.canvas = document.createElement("canvas");
    this.canvas.className = "annotation-overlay";
    viewer.canvas.appendChild(this.canvas);
    this.ctx = this.canvas.getContext("2d");
    // The last full drawing and its transform, reused while the view
    // animates when drawing in full is too slow for every frame.
    this.snapshot = null;
    this.animating = false;
    const redraw = () => this.invalidate();
    viewer.addHandler("update-viewport", redraw);
    viewer.addHandler("resize", redraw);
    viewer.addHandler("open", redraw);
    viewer.addHandler("animation-start", () => {
      this.animating = true;
    });
    viewer.addHandler("animation-finish", () => {
      this.animating = false;
      this.invalidate();
    });
  }

  destroy() {
    this.canvas.remove();
  }

  // Coalesces redraw requests into one per animation frame.
  invalidate() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.draw();
    });
  }

  resize() {
    const el = this.viewer.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = Math.round(el.clientWidth * dpr);
    const h = Math.round(el.clientHeight * dpr);
    if (this.canvas.width !== w || this.canvas.height !== h) {
      this.canvas.width = w;
      this.canvas.height = h;
    }
    this.ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    return { w: el.clientWidth, h: el.clientHeight };
  }

  draw() {
    const { w, h } = this.resize();
    const ctx = this.ctx;
    ctx.clearRect(0, 0, w, h);
    const t = this.transform && this.transform.affine();
    if (!t || !(t.s > 0)) return;
    if (this.animating && this.snapshot && this.drawSnapshot(t, w, h)) {
      return;
    }
    let segments = 0;
    if (this.visible) segments = this.drawAnnotations(t, w, h);
    this.drawSelection(t);
    this.drawDraft(t);
    this.takeSnapshot(t, segments);
  }

  // Keeps a copy of a drawing too heavy to repeat at every frame.
  takeSnapshot(t, segments) {
    if (segments < HEAVY_SEGMENTS) {
      this.snapshot = null;
      return;
    }
    const copy = this.snapshot ? this.snapshot.canvas :
      document.createElement("canvas");
    copy.width = this.canvas.width;
    copy.height = this.canvas.height;
    copy.getContext("2d").drawImage(this.canvas, 0, 0);
    this.snapshot = { canvas: copy, t };
  }

  // Mid-animation: the last full drawing moved and scaled to the current
  // view (a moment blurred or cut at the edges; drawn in full when the
  // animation ends).  False when the zoom has changed too much for that.
  drawSnapshot(t, w, h) {
    const { canvas, t: t0 } = this.snapshot;
    const k = t.s / t0.s;
    if (k > 4 || k < 0.25) return false;
    const ctx = this.ctx;
    ctx.drawImage(canvas, t.ox - t0.ox * k, t.oy - t0.oy * k, w * k, h * k);
    return true;
  }

  // Visible annotations grouped into buckets of one style and colour.
  buckets(t, w, h) {
    const pad = 4 / t.s;
    const view = { x0: -t.ox / t.s - pad, y0: -t.oy / t.s - pad,
      x1: (w - t.ox) / t.s + pad, y1: (h - t.oy) / t.s + pad };
    const buckets = new Map();
    let culled = 0;
    for (const a of this.model.annotations) {
      if (!boxesTouch(a.box, view)) {
        culled++;
        continue;
      }
      const key = `${a.state}|${a.color}`;
      if (!buckets.has(key)) buckets.set(key, []);
      buckets.get(key).push(a);
    }
    this.stats = { drawn: this.model.annotations.length - culled, culled };
    return buckets;
  }

  // Draws the visible annotations; returns the number of segments drawn.
  drawAnnotations(t, w, h) {
    const ctx = this.ctx;
    let total = 0;
    for (const [key, list] of this.buckets(t, w, h)) {
      const [state, color] = key.split("|");
      const style = STYLES[state] || STYLES.saved;
      const fill = hexRgba(color, style.fill);
      let segments = 0;
      ctx.beginPath();
      for (const a of list) {
        segments += this.tracePath(a, t);
        // Canvas paths slow down sharply past a few thousand segments,
        // so long buckets are painted in pieces.
        if (segments > PATH_SEGMENTS) {
          this.paint(style, color, fill);
          ctx.beginPath();
          total += segments;
          segments = 0;
        }
      }
      this.paint(style, color, fill);
      total += segments;
    }
    ctx.setLineDash([]);
    return total;
  }

  paint(style, color, fill) {
    const ctx = this.ctx;
    ctx.fillStyle = fill;
    ctx.fill("nonzero");
    if (style.dash) {
      // A dark halo keeps dashed outlines legible on any stain.
      ctx.setLineDash([]);
      ctx.lineWidth = style.width + 2;
      ctx.strokeStyle = "rgba(0,0,0,0.45)";
      ctx.stroke();
    }
    ctx.setLineDash(style.dash || []);
    ctx.lineWidth = style.width;
    ctx.strokeStyle = color;
    ctx.stroke();
  }

  // Rings of one annotation at the detail this zoom can show.
  ringsAt(a, t) {
    const level = Math.round(Math.log2(SIMPLIFY_PIXELS / t.s));
    if (level < 0) return a.parts.flat();
    if (!a.cache.has(level)) {
      const tol = 2 ** level;
      a.cache.set(level, a.parts.flat().map((r) => simplifyRing(r, tol)));
    }
    return a.cache.get(level);
  }

  tracePath(a, t) {
    const ctx = this.ctx;
    const bw = (a.box.x1 - a.box.x0) * t.s;
    const bh = (a.box.y1 - a.box.y0) * t.s;
    if (bw < TINY_PIXELS && bh < TINY_PIXELS) {
      // Too small to show its shape: its box (at least a 3 px dot) marks
      // where it is.  Axis-aligned boxes rasterise many times faster than
      // small slanted outlines, which dominate the cost at low zoom.
      const w = Math.max(bw, 3), h = Math.max(bh, 3);
      const cx = ((a.box.x0 + a.box.x1) / 2) * t.s + t.ox;
      const cy = ((a.box.y0 + a.box.y1) / 2) * t.s + t.oy;
      ctx.rect(cx - w / 2, cy - h / 2, w, h);
      return 4;
    }
    let segments = 0;
    for (const ring of this.ringsAt(a, t)) {
      segments += ring.length;
      if (a.type === "Dot" || a.type === "PointSet") {
        for (const [x, y] of ring) {
          const ex = x * t.s + t.ox, ey = y * t.s + t.oy;
          ctx.moveTo(ex + 4, ey);
          ctx.arc(ex, ey, 4, 0, 2 * Math.PI);
        }
        continue;
      }
      ring.forEach(([x, y], i) => {
        const ex = x * t.s + t.ox, ey = y * t.s + t.oy;
        if (i === 0) ctx.moveTo(ex, ey);
        else ctx.lineTo(ex, ey);
      });
      ctx.closePath();
    }
    return segments;
  }

  drawSelection(t) {
    const a = this.model.selected;
    if (!a) return;
    const ctx = this.ctx;
    ctx.beginPath();
    this.tracePath(a, t);
    ctx.lineWidth = 6;
    ctx.strokeStyle = "rgba(255,255,255,0.9)";
    ctx.stroke();
    ctx.lineWidth = 2;
    ctx.strokeStyle = a.color;
    ctx.setLineDash(a.state === "predicted" ? [9, 6] : []);
    ctx.stroke();
    ctx.setLineDash([]);
  }

  // The polygon being drawn: its vertices and a line to the pointer.
  drawDraft(t) {
    const d = this.model.draft;
    if (!d || d.points.length === 0) return;
    const ctx = this.ctx;
    const pts = d.points.map(([x, y]) => [x * t.s + t.ox, y * t.s + t.oy]);
    ctx.beginPath();
    pts.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
    if (d.pointer) ctx.lineTo(d.pointer.x, d.pointer.y);
    ctx.lineWidth = 2;
    ctx.strokeStyle = d.color;
    ctx.stroke();
    ctx.fillStyle = "#ffffff";
    for (const [x, y] of pts) {
      ctx.beginPath();
      ctx.arc(x, y, 3.5, 0, 2 * Math.PI);
      ctx.fill();
      ctx.stroke();
    }
  }
}
