// End-to-end test of the viewer in a real browser against a real server:
// Debian's chromium driven by playwright-core, `aapi serve` on a temporary
// data folder holding kidney_val.svs.  It opens the viewer, waits for the
// tiles, checks in a screenshot that a known polygon's outline carries its
// class colour, draws a polygon with the mouse, saves (first without the
// token, which must fail and keep the edit, then with it) and finds the
// new version through the API; then reverts from the history panel,
// selects and deletes a polygon with a click and a key, and predicts.
//
// Exit status: 0 passed, 77 skipped (meson's convention), 1 failed.

import { spawn, spawnSync } from "node:child_process";
import {
  existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync,
} from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const TOP = resolve(HERE, "..", "..");
const WEB = join(TOP, "web");
const CHROMIUM = "/usr/bin/chromium";
const TOKEN = "e2e-secret-token";
const SLIDE = "kidney_val";

let failures = 0;

function skip(why) {
  console.log(`SKIP: ${why}`);
  process.exit(77);
}

function check(ok, what, detail = "") {
  console.log(`${ok ? "ok" : "not ok"} - ${what}${detail ? `: ${detail}` : ""}`);
  if (!ok) failures++;
  return ok;
}

function fatal(what) {
  throw new Error(what);
}

// --- prerequisites ----------------------------------------------------------

function sharedDir() {
  return process.env.AAPI_SHARED_DIR || join(TOP, "..", "shared");
}

function prerequisites() {
  if (!existsSync(CHROMIUM)) skip(`${CHROMIUM} is absent (apt-get install chromium)`);
  const req = createRequire(join(WEB, "package.json"));
  let playwright;
  try {
    playwright = req("playwright-core");
  } catch {
    skip("web/node_modules lacks playwright-core (run npm ci in web/)");
  }
  const slides = join(sharedDir(), "data", "slides");
  for (const ext of ["svs", "xml"]) {
    const p = join(slides, `${SLIDE}.${ext}`);
    if (!existsSync(p)) skip(`test data ${p} is absent (set AAPI_SHARED_DIR)`);
  }
  if (!existsSync(join(WEB, "dist", "index.html"))) {
    // make test builds it; a test run on its own builds it here.
    const r = spawnSync("npm", ["run", "build", "--silent"],
      { cwd: WEB, stdio: "inherit" });
    if (r.status !== 0) fatal("npm run build failed in web/");
  }
  const binary = process.env.AAPI_BINARY || join(TOP, "build-test", "aapi");
  if (!existsSync(binary)) fatal(`aapi binary ${binary} is absent`);
  return { chromium: playwright.chromium, slides, binary };
}

// --- the server -------------------------------------------------------------

function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

function runAapi(binary, args, env) {
  const r = spawnSync(binary, args, { env, encoding: "utf8" });
  if (r.status !== 0) {
    fatal(`aapi ${args.join(" ")} exited ${r.status}:\n${r.stdout}${r.stderr}`);
  }
}

async function startServer(binary, slideSource, tmp) {
  const slideDir = join(tmp, "slides");
  mkdirSync(slideDir);
  for (const ext of ["svs", "xml"]) {
    symlinkSync(join(slideSource, `${SLIDE}.${ext}`),
      join(slideDir, `${SLIDE}.${ext}`));
  }
  const port = await freePort();
  const env = {
    ...process.env,
    AAPI_DATA_DIR: join(tmp, "data"),
    AAPI_MODEL_DIR: join(tmp, "model"),
    AAPI_WEB_DIR: join(WEB, "dist"),
    AAPI_API_TOKENS: TOKEN,
    AAPI_PORT: String(port),
    // Training would compete with the browser for the two cores.
    AAPI_TRAIN_FIRST_DELAY: "86400",
    AAPI_TRAIN_INTERVAL: "86400",
  };
  delete env.AAPI_DATABASE_URL;
  runAapi(binary, ["init-db"], env);
  runAapi(binary, ["init-data", "--slide-dir", slideDir], env);
  const log = [];
  const proc = spawn(binary, ["serve", "--port", String(port)], { env });
  proc.stdout.on("data", (d) => log.push(d));
  proc.stderr.on("data", (d) => log.push(d));
  const base = `http://127.0.0.1:${port}`;
  const server = { proc, base, log: () => Buffer.concat(log).toString() };
  for (let i = 0; i < 600; i++) {
    if (proc.exitCode !== null) fatal(`aapi serve exited:\n${server.log()}`);
    try {
      if ((await fetch(`${base}/api/v1/health`)).ok) return server;
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  fatal(`aapi serve did not answer:\n${server.log()}`);
}

function stopServer(server) {
  if (!server || server.proc.exitCode !== null) return Promise.resolve();
  return new Promise((ok) => {
    const timer = setTimeout(() => server.proc.kill("SIGKILL"), 20000);
    server.proc.once("exit", () => {
      clearTimeout(timer);
      ok();
    });
    server.proc.kill("SIGTERM");
  });
}

async function getJSON(server, path) {
  const r = await fetch(server.base + path);
  if (!r.ok) fatal(`GET ${path}: HTTP ${r.status} ${await r.text()}`);
  return r.json();
}

// --- the known polygon ------------------------------------------------------

// The first annotation of the slide's ASAP file: name, colour, vertices.
function knownPolygon(xmlPath) {
  const xml = readFileSync(xmlPath, "utf8");
  const m = /<Annotation\s[^>]*>[\s\S]*?<\/Annotation>/.exec(xml);
  if (!m) fatal(`no annotation in ${xmlPath}`);
  const attr = (n) => new RegExp(`${n}="([^"]*)"`).exec(m[0])[1];
  const points = [...m[0].matchAll(/X="([-0-9.eE]+)"\s+Y="([-0-9.eE]+)"/g)]
    .map((p) => [Number(p[1]), Number(p[2])]);
  return { name: attr("Name"), group: attr("PartOfGroup"),
    color: attr("Color"), points };
}

function boxOf(points) {
  const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
  const x0 = Math.min(...xs), y0 = Math.min(...ys);
  return { x: x0, y: y0, width: Math.max(...xs) - x0,
    height: Math.max(...ys) - y0 };
}

// --- the browser ------------------------------------------------------------

async function openBrowser(chromium, tmp) {
  const context = await chromium.launchPersistentContext(
    join(tmp, "chromium-profile"), {
      executablePath: CHROMIUM,
      headless: true,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"],
      viewport: { width: 1280, height: 800 },
      deviceScaleFactor: 1,
    });
  const page = context.pages()[0] || await context.newPage();
  page.on("pageerror", (e) => check(false, "no script error in the page",
    e.message));
  page.on("dialog", (d) => d.accept());
  return { context, page };
}

function nextFrames(page) {
  return page.evaluate(() => new Promise((r) =>
    requestAnimationFrame(() => requestAnimationFrame(r))));
}

async function waitForTiles(page) {
  // A frame first, so that a view just moved has asked for its tiles.
  await nextFrames(page);
  await page.waitForFunction(() => window.aapiViewer &&
    window.aapiViewer.fullyLoaded(), null, { timeout: 60000 });
  // Then one more, so that the overlay has drawn the final position.
  await nextFrames(page);
}

// Pixels of a page screenshot at page coordinates, read back by decoding
// the PNG in the page itself.
async function screenshotPixels(page, points) {
  const png = await page.screenshot({ type: "png" });
  return page.evaluate(async ({ b64, pts }) => {
    const img = new Image();
    img.src = `data:image/png;base64,${b64}`;
    await img.decode();
    const c = document.createElement("canvas");
    c.width = img.width;
    c.height = img.height;
    const ctx = c.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(img, 0, 0);
    return pts.map(([x, y]) => {
      const d = ctx.getImageData(Math.round(x) - 2, Math.round(y) - 2, 5, 5)
        .data;
      const out = [];
      for (let i = 0; i < d.length; i += 4) out.push([d[i], d[i + 1], d[i + 2]]);
      return out;
    });
  }, { b64: png.toString("base64"), pts: points });
}

// Share of outline points with a pixel of the colour within 2 px.
async function outlineColourShare(page, polygon) {
  const viewerBox = await page.locator("#viewer").boundingBox();
  const step = Math.max(1, Math.floor(polygon.points.length / 60));
  const sample = polygon.points.filter((_, i) => i % step === 0);
  const pts = await page.evaluate((s) => s.map(([x, y]) => {
    const p = window.aapiViewer.level0ToElement(x, y);
    return [p.x, p.y];
  }), sample);
  const pagePts = pts.map(([x, y]) => [x + viewerBox.x, y + viewerBox.y]);
  const want = [1, 3, 5].map((i) => parseInt(polygon.color.slice(i, i + 2), 16));
  const pixels = await screenshotPixels(page, pagePts);
  const near = (rgb) => Math.hypot(rgb[0] - want[0], rgb[1] - want[1],
    rgb[2] - want[2]) < 40;
  const hits = pixels.filter((block) => block.some(near)).length;
  return hits / pixels.length;
}

async function statusText(page) {
  return page.locator("#status-text").textContent();
}

async function waitForStatus(page, pattern) {
  await page.waitForFunction((src) => new RegExp(src).test(
    document.getElementById("status-text").textContent), pattern.source,
  { timeout: 60000 });
}

// --- the test ---------------------------------------------------------------

async function checkAnnotationsDrawn(page, polygon) {
  const b = boxOf(polygon.points);
  const m = Math.max(b.width, b.height) * 0.6;
  await page.evaluate((box) => window.aapiViewer.fitLevel0(box),
    { x: b.x - m, y: b.y - m, width: b.width + 2 * m, height: b.height + 2 * m });
  await waitForTiles(page);
  const shown = await outlineColourShare(page, polygon);
  check(shown >= 0.8, `${polygon.name}'s outline is drawn in ${polygon.color}`,
    `${Math.round(shown * 100)} % of sampled outline points`);
  // The same points without the overlay: the colour is the overlay's.
  await page.keyboard.press("h");
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(r)));
  const hidden = await outlineColourShare(page, polygon);
  check(hidden <= 0.2, "the colour comes from the overlay",
    `${Math.round(hidden * 100)} % with annotations hidden`);
  await page.keyboard.press("h");
}

// Draws a quadrilateral in the empty upper-left part of the view with the
// Artery class: three clicks and a double-click.
async function drawPolygon(page) {
  const vb = await page.locator("#viewer").boundingBox();
  const clicks = [[0.12, 0.12], [0.3, 0.1], [0.32, 0.3], [0.1, 0.28]]
    .map(([fx, fy]) => [vb.x + fx * vb.width, vb.y + fy * vb.height]);
  await page.keyboard.press("2");
  await page.keyboard.press("d");
  for (const [x, y] of clicks.slice(0, 3)) {
    await page.mouse.click(x, y);
  }
  const [lx, ly] = clicks[3];
  await page.mouse.dblclick(lx, ly);
  const drawn = await page.evaluate(() => {
    const a = window.aapiViewer.app.editor.selected;
    return a && { name: a.name, group: a.group, state: a.state,
      points: a.parts[0][0] };
  });
  check(!!drawn && drawn.state === "new" && drawn.group === "Artery",
    "a new Artery polygon is drawn", JSON.stringify(drawn && drawn.name));
  check(!!drawn && drawn.points.length === 4, "it has the four clicked vertices",
    drawn ? `${drawn.points.length} vertices` : "none");
  return drawn;
}

async function saveWithoutToken(page, server, slideId, before) {
  await page.click("#btn-save");
  await waitForStatus(page, /Save failed/);
  const text = await statusText(page);
  check(/token|auth|unauthori|forbidden/i.test(text),
    "a refused save shows the server's reason", text);
  const pending = await page.evaluate(() =>
    window.aapiViewer.app.editor.pending().added);
  check(pending === 1, "the edit stays in the page after a failed save");
  const after = (await getJSON(server, `/api/v1/slides/${slideId}/versions`))
    .versions.length;
  check(after === before, "a refused save makes no version");
}

async function saveWithToken(page) {
  await page.fill("#token", TOKEN);
  await page.locator("#token").dispatchEvent("change");
  await page.locator("#viewer").focus().catch(() => {});
  await page.click("#btn-save");
  await waitForStatus(page, /Saved as a new version|Save failed|reloading failed/);
  const text = await statusText(page);
  check(/Saved as a new version/.test(text), "the save succeeds", text);
}

// Same vertices within a pixel, in any order or ring orientation.
function samePoints(feature, points) {
  const g = feature.geometry;
  if (!g || g.type !== "Polygon") return false;
  const ring = g.coordinates[0].slice();
  const first = ring[0], last = ring[ring.length - 1];
  if (ring.length > 1 && first[0] === last[0] && first[1] === last[1]) {
    ring.pop();
  }
  return ring.length === points.length && points.every(([x, y]) =>
    ring.some(([rx, ry]) => Math.abs(rx - x) < 1 && Math.abs(ry - y) < 1));
}

async function checkNewVersion(server, slideId, before, drawn) {
  const versions = (await getJSON(server, `/api/v1/slides/${slideId}/versions`))
    .versions;
  check(versions.length === before.length + 1,
    "the save made one new version", `${before.length} -> ${versions.length}`);
  const newest = versions[versions.length - 1];
  const previous = before[before.length - 1];
  check(!previous || newest.count === previous.count + 1,
    "the new version has one annotation more",
    `${previous && previous.count} -> ${newest.count}`);
  const latest = await getJSON(server,
    `/api/v1/slides/${slideId}/versions/latest?format=geojson`);
  const found = latest.features.find((f) => samePoints(f, drawn.points));
  check(!!found, "the newest version holds the drawn polygon");
  const cls = found && found.properties && found.properties.classification;
  check(!!cls && cls.name === "Artery", "with its class",
    JSON.stringify(cls));
}

// The history panel lists the versions; reverting to the first makes a
// new version equal to it.
async function checkRevert(page, server, slideId) {
  await page.click("button[data-tab=history]");
  const rows = page.locator("#version-list li[data-seq]");
  await rows.first().waitFor();
  const before = (await getJSON(server, `/api/v1/slides/${slideId}/versions`))
    .versions;
  check(await rows.count() === before.length,
    "the history panel lists every version", `${await rows.count()}`);
  const first = before[0];
  await page.click(`#version-list li[data-seq="${first.seq}"] button`);
  await waitForStatus(page, /Reverted|Revert failed/);
  check(/Reverted/.test(await statusText(page)), "the revert succeeds",
    await statusText(page));
  const after = (await getJSON(server, `/api/v1/slides/${slideId}/versions`))
    .versions;
  const newest = after[after.length - 1];
  check(after.length === before.length + 1 && newest.count === first.count,
    "the revert made a version equal to the first",
    `${after.length} versions, newest holds ${newest.count}`);
  const shown = await page.evaluate(() => window.aapiViewer.annotationCount());
  check(shown === first.count, "the page shows the reverted annotations",
    `${shown}`);
}

// Clicking inside the known polygon selects it; Delete and a save remove
// it from the newest version.
async function checkSelectAndDelete(page, server, slideId, polygon) {
  await page.click("button[data-tab=annotate]");
  const b = boxOf(polygon.points);
  const m = Math.max(b.width, b.height) * 0.6;
  await page.evaluate((box) => window.aapiViewer.fitLevel0(box),
    { x: b.x - m, y: b.y - m, width: b.width + 2 * m, height: b.height + 2 * m });
  await waitForTiles(page);
  const vb = await page.locator("#viewer").boundingBox();
  const c = await page.evaluate(([x, y]) =>
    window.aapiViewer.level0ToElement(x, y),
  [b.x + b.width / 2, b.y + b.height / 2]);
  await page.mouse.click(vb.x + c.x, vb.y + c.y);
  const selected = await page.evaluate(() =>
    window.aapiViewer.app.editor.selected &&
    window.aapiViewer.app.editor.selected.name);
  check(selected === polygon.name, "a click selects the polygon under it",
    String(selected));
  await page.keyboard.press("Delete");
  await page.click("#btn-save");
  await waitForStatus(page, /Saved as a new version|Save failed|reloading/);
  const versions = (await getJSON(server,
    `/api/v1/slides/${slideId}/versions`)).versions;
  const latest = await getJSON(server,
    `/api/v1/slides/${slideId}/versions/latest?format=geojson`);
  const names = latest.features.map((f) => f.properties && f.properties.name);
  check(!names.includes(polygon.name) &&
    versions[versions.length - 1].count ===
      versions[versions.length - 2].count - 1,
  "the deleted polygon is gone from the newest version",
  `${versions[versions.length - 1].count} annotations`);
}

// "Predict this view": predictions are listed as such and can be
// accepted; with no models the server's reason is shown instead.
async function checkPredict(page) {
  await page.click("#btn-predict");
  await waitForStatus(page, /predicted|Prediction failed/);
  const text = await statusText(page);
  const state = await page.evaluate(() => {
    const ed = window.aapiViewer.app.editor;
    return { predicted: ed.predictions().length,
      listed: document.querySelectorAll("#prediction-list li").length };
  });
  if (/Prediction failed/.test(text)) {
    check(/Prediction failed: \S/.test(text) && state.predicted === 0,
      "a refused prediction shows the server's reason", text);
    return;
  }
  check(state.listed === state.predicted,
    "every prediction is listed for accept or delete",
    `${state.listed} of ${state.predicted}`);
  if (state.predicted === 0) return;
  await page.click("#btn-accept-all");
  const left = await page.evaluate(() =>
    window.aapiViewer.app.editor.predictions().length);
  check(left === 0, "accept all accepts every prediction");
}

async function run() {
  const pre = prerequisites();
  const tmp = mkdtempSync(join(tmpdir(), "aapi-web-"));
  let server = null, browser = null;
  try {
    server = await startServer(pre.binary, pre.slides, tmp);
    const slides = (await getJSON(server, "/api/v1/slides")).slides;
    const slide = slides.find((s) => s.name === `${SLIDE}.svs`);
    if (!slide) fatal(`${SLIDE}.svs is not registered`);
    const before = (await getJSON(server,
      `/api/v1/slides/${slide.id}/versions`)).versions;

    browser = await openBrowser(pre.chromium, tmp);
    const { page } = browser;
    await page.goto(`${server.base}/viewer/?slide=${slide.id}`);
    await page.waitForFunction(() => window.aapiViewer &&
      window.aapiViewer.isReady(), null, { timeout: 60000 });
    await waitForTiles(page);
    const count = await page.evaluate(() => window.aapiViewer.annotationCount());
    check(count > 0, "the newest annotations are loaded", `${count}`);

    const polygon = knownPolygon(join(pre.slides, `${SLIDE}.xml`));
    await checkAnnotationsDrawn(page, polygon);
    const drawn = await drawPolygon(page);
    if (drawn) {
      await saveWithoutToken(page, server, slide.id, before.length);
      await saveWithToken(page);
      await checkNewVersion(server, slide.id, before, drawn);
      await checkRevert(page, server, slide.id);
      await checkSelectAndDelete(page, server, slide.id, polygon);
      await checkPredict(page);
    }
  } finally {
    if (browser) await browser.context.close().catch(() => {});
    await stopServer(server);
    if (failures && server) console.log(`server log:\n${server.log()}`);
    if (process.env.AAPI_KEEP_TMP !== "1") {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
}

try {
  await run();
} catch (e) {
  check(false, "the test ran to the end", e.stack || String(e));
}
console.log(failures ? `${failures} checks failed` : "all checks passed");
process.exit(failures ? 1 : 0);
