// Time to show N annotation polygons after the view moves, in chromium:
// the viewer's canvas overlay (web/src/js/overlay.js) against the usual
// way of overlaying annotations, one SVG <path> per polygon under a
// transformed group.  Both draw the same polygons at the same three zooms;
// a frame is timed from the view change to the end of the next painted
// frame (two requestAnimationFrame callbacks).  No server is needed: the
// page and modules are served from web/ through playwright's routing, and
// OpenSeadragon is replaced by a stand-in with a fixed view.
//
//   node bench/viewer-overlay/overlay.mjs [N]   (default 10000)
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const TOP = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const WEB = join(TOP, "web");
const N = Number(process.argv[2] || 10000);
const { chromium } = createRequire(join(WEB, "package.json"))(
  "playwright-core");

// The page: an 800x800 element; polygons of 200 vertices on a 100-column
// grid 120 px apart (a 12,000 px square slide, as kidney_val.svs).
const PAGE = `<!doctype html><body style="margin:0">
<div id="v" style="position:relative;width:800px;height:800px"></div>
<script type="module">
import { makeAnnotation } from "/src/js/annotations.js";
import { Overlay } from "/src/js/overlay.js";
const el = document.getElementById("v");
const rings = [];
for (let i = 0; i < ${N}; i++) {
  const cx = (i % 100) * 120 + 60, cy = Math.floor(i / 100) * 120 + 60;
  const ring = [];
  for (let k = 0; k < 200; k++) {
    const t = (k / 200) * 2 * Math.PI;
    ring.push([cx + 45 * Math.cos(t), cy + 35 * Math.sin(t)]);
  }
  rings.push(ring);
}
const frames = () => new Promise((r) =>
  requestAnimationFrame(() => requestAnimationFrame(r)));
// A view: scale s and offset, as the transform the overlay asks for.
let view = { s: 1, ox: 0, oy: 0 };
const transform = { affine: () => view };
const viewer = { canvas: el, addHandler: () => {} };
const list = rings.map((r) => makeAnnotation({ name: "", group: "Tubules",
  color: "#e89f17", parts: [[r]] }));
window.timeCanvas = async (v) => {
  const overlay = new Overlay(viewer, transform,
    { annotations: list, selected: null, draft: null });
  view = v;
  overlay.draw();
  await frames();
  const t0 = performance.now();
  view = { ...v, ox: v.ox - 7 };
  overlay.draw();
  await frames();
  const ms = performance.now() - t0;
  overlay.destroy();
  return ms;
};
window.timeSvg = async (v) => {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", "800");
  svg.setAttribute("height", "800");
  svg.style.position = "absolute";
  const g = document.createElementNS(ns, "g");
  for (const r of rings) {
    const p = document.createElementNS(ns, "path");
    p.setAttribute("d", "M" + r.map(([x, y]) => x + " " + y).join("L") + "Z");
    p.setAttribute("fill", "rgba(232,159,23,0.12)");
    p.setAttribute("stroke", "#e89f17");
    p.setAttribute("stroke-width", String(2 / v.s));
    g.append(p);
  }
  svg.append(g);
  g.setAttribute("transform", \`matrix(\${v.s} 0 0 \${v.s} \${v.ox} \${v.oy})\`);
  el.append(svg);
  await frames();
  const t0 = performance.now();
  g.setAttribute("transform",
    \`matrix(\${v.s} 0 0 \${v.s} \${v.ox - 7} \${v.oy})\`);
  await frames();
  const ms = performance.now() - t0;
  svg.remove();
  return ms;
};
window.ready = true;
</script>`;

const VIEWS = {
  "whole slide": { s: 800 / 12000, ox: 0, oy: 0 },
  "4000 px": { s: 0.2, ox: -400, oy: -400 },
  "1000 px": { s: 0.8, ox: -4000, oy: -4000 },
};

const context = await chromium.launchPersistentContext(
  mkdtempSync(join(tmpdir(), "aapi-bench-overlay-")), {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run",
      "--disable-background-networking", "--disable-component-update"],
    viewport: { width: 800, height: 800 },
  });
const page = context.pages()[0] || await context.newPage();
await page.route("http://bench.invalid/**", (route) => {
  const path = new URL(route.request().url()).pathname;
  if (path === "/") {
    return route.fulfill({ contentType: "text/html", body: PAGE });
  }
  return route.fulfill({ contentType: "text/javascript",
    body: readFileSync(join(WEB, path)) });
});
await page.goto("http://bench.invalid/");
await page.waitForFunction(() => window.ready);

const median = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1];
console.log(`${N} polygons of 200 vertices, 800x800 view, ms per frame ` +
  "(median of 5)");
console.log("view            canvas overlay   SVG path per polygon   ratio");
for (const [name, v] of Object.entries(VIEWS)) {
  const c = [], s = [];
  for (let i = 0; i < 5; i++) {
    c.push(await page.evaluate((x) => window.timeCanvas(x), v));
    s.push(await page.evaluate((x) => window.timeSvg(x), v));
  }
  const mc = median(c), ms = median(s);
  console.log(`${name.padEnd(15)} ${mc.toFixed(1).padStart(14)} ` +
    `${ms.toFixed(1).padStart(22)} ${(ms / mc).toFixed(1).padStart(7)}x`);
}
await context.close();
