// Frame times of a zoom animation in the viewer with 10,000 synthetic
// polygons on the first slide of a running aapi server, with the overlay's
// mid-animation reuse of its last drawing and without it (every frame
// drawn in full).  Prints frames, median and longest frame in ms.
//
//   node bench/viewer-overlay/animation.mjs http://127.0.0.1:5000/viewer/
import { mkdtempSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const TOP = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const { chromium } = createRequire(join(TOP, "web", "package.json"))(
  "playwright-core");
const ctx = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "aapi-bench-anim-")), { executablePath: "/usr/bin/chromium", headless: true,
  args: ["--no-sandbox","--disable-gpu"], viewport: { width: 1280, height: 800 } });
const page = ctx.pages()[0];
page.on("pageerror", e => console.log("pageerror:", e.message));
await page.goto(process.argv[2]);
await page.waitForFunction(() => window.aapiViewer && window.aapiViewer.isReady() && window.aapiViewer.fullyLoaded());
const r = await page.evaluate(async () => {
  const { makeAnnotation } = await import("./js/annotations.js");
  const list = [];
  for (let i = 0; i < 10000; i++) {
    const cx = (i % 100) * 120 + 60, cy = Math.floor(i / 100) * 120 + 60;
    const ring = [];
    for (let k = 0; k < 200; k++) { const t = k / 200 * 2 * Math.PI; ring.push([cx + 45 * Math.cos(t), cy + 35 * Math.sin(t)]); }
    list.push(makeAnnotation({ name: "P" + i, group: "Tubules", color: "#e89f17", parts: [[ring]] }));
  }
  const app = window.aapiViewer.app;
  app.editor.load(list);
  const out = {};
  for (const mode of ["snapshot", "full"]) {
    if (mode === "full") app.overlay.drawSnapshot = () => false;
    window.aapiViewer.fitLevel0({x: 2000, y: 2000, width: 5000, height: 4000});
    await new Promise(r => setTimeout(r, 1500));
    const frames = [];
    let last = performance.now(), done = false;
    app.viewer.addOnceHandler("animation-finish", () => { done = true; });
    app.viewer.viewport.zoomBy(1.8);
    while (!done) { await new Promise(r => requestAnimationFrame(r)); const now = performance.now(); frames.push(now - last); last = now; }
    frames.sort((a, b) => a - b);
    out[mode] = { frames: frames.length, median_ms: Math.round(frames[frames.length >> 1]), max_ms: Math.round(frames[frames.length - 1]) };
  }
  out.snapshotTaken = !!app.overlay.snapshot;
  return out;
});
console.log(JSON.stringify(r, null, 1));
await ctx.close();
