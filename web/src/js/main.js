// The aapi viewer: slide list, OpenSeadragon with the annotation overlay,
// prediction, editing, saving, history and models.

/* global OpenSeadragon */

import {
  api, ApiError, authHeaders, getToken, request, setToken,
} from "./api.js";
import { readGeoJSON, saveBody } from "./annotations.js";
import { Editor } from "./editor.js";
import { clampRegion } from "./geometry.js";
import { Overlay, SlideTransform } from "./overlay.js";
import { el, JobPoller, renderHistory, renderModels } from "./panels.js";
import * as status from "./status.js";

const $ = (id) => document.getElementById(id);

// Regions above this many level-0 pixels ask before predicting: they take
// long and rarely are what the user meant.
const LARGE_PREDICT_PIXELS = 36e6;

const app = {
  slides: [],
  slide: null,
  viewer: null,
  transform: null,
  overlay: null,
  editor: null,
  mode: "select",
  predictAbort: null,
  saving: false,
  poller: null,
  ready: false,              // the viewer has opened the slide's tiles
  annotationsLoaded: false,  // and its newest annotations are in
};

function reason(e) {
  return e instanceof ApiError ? e.reason : String(e && e.message || e);
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

// --- slides ---------------------------------------------------------------

// A thumbnail; with a token set it is fetched with the token, which an
// <img> cannot send.
function thumbnail(id) {
  const img = el("img", { alt: "", loading: "lazy" });
  const url = api.thumbnail(id, 240);
  if (!getToken()) {
    img.src = url;
    return img;
  }
  request("GET", url).then((r) => r.blob())
    .then((b) => { img.src = URL.createObjectURL(b); })
    .catch(() => { img.alt = "no thumbnail"; });
  return img;
}

function slideItem(s) {
  return el("li", { "data-id": s.id, title: s.path || s.name,
    onclick: () => openSlide(s.id) },
    thumbnail(s.id),
    el("div", { class: "name" }, s.name),
    el("div", { class: "meta" },
      `${s.width}×${s.height} · ${plural(s.versions ?? 0, "version")}`));
}

async function loadSlides() {
  const list = $("slide-list");
  try {
    app.slides = (await api.slides()).slides || [];
  } catch (e) {
    status.fail(null, `Cannot list slides: ${reason(e)}`);
    return;
  }
  list.replaceChildren(...app.slides.map(slideItem));
  if (app.slides.length === 0) {
    list.append(el("li", {}, "No slides registered yet " +
      "(aapi init-data --slide-dir DIR)."));
  }
  markCurrentSlide();
}

// The version count under a slide's thumbnail, after a save or revert.
function updateSlideMeta(id, versions) {
  const s = app.slides.find((x) => x.id === id);
  const li = $("slide-list").querySelector(`li[data-id="${id}"] .meta`);
  if (!s || !li) return;
  s.versions = versions;
  li.textContent = `${s.width}×${s.height} · ${plural(versions, "version")}`;
}

function markCurrentSlide() {
  for (const li of $("slide-list").children) {
    li.classList.toggle("current",
      !!app.slide && li.dataset.id === app.slide.id);
  }
}

// The slide's content in level-0 pixels: its bounds, or all of it.
function contentRegion() {
  const s = app.slide;
  const b = s.bounds;
  if (b && b.width > 0 && b.height > 0) return b;
  return { x: 0, y: 0, width: s.width, height: s.height };
}

async function openSlide(id) {
  if (app.slide && app.slide.id === id) return;
  if (app.editor.isDirty() &&
      !confirm("This slide has unsaved edits. Leave them?")) return;
  let slide = app.slides.find((s) => s.id === id);
  try {
    slide = await api.slide(id);
  } catch (e) {
    if (!slide) {
      status.fail(null, `Cannot open slide: ${reason(e)}`);
      return;
    }
  }
  app.slide = slide;
  app.ready = false;
  app.annotationsLoaded = false;
  $("slide-title").textContent = `${slide.name} · ${slide.width}×` +
    `${slide.height} px${slide.mpp_x ? ` · ${slide.mpp_x} µm/px` : ""}`;
  $("viewer-empty").hidden = true;
  const url = new URL(location.href);
  url.searchParams.set("slide", id);
  history.replaceState(null, "", url);
  markCurrentSlide();
  setMode("select");
  app.editor.load([]);
  app.transform = new SlideTransform(app.viewer, contentRegion());
  app.overlay.transform = app.transform;
  // Tiles go through XHR only when a token must go with them.
  app.viewer.loadTilesWithAjax = !!getToken();
  app.viewer.setAjaxHeaders(authHeaders(), false);
  app.viewer.open(api.dzi(id));
  await Promise.all([loadAnnotations(), loadVersions()]);
}

// --- annotations ----------------------------------------------------------

async function fetchLatest() {
  try {
    const doc = await api.latest(app.slide.id);
    return readGeoJSON(doc, "saved", (n) => app.editor.classColor(n));
  } catch (e) {
    // A slide without any version yet has nothing to show.
    if (e instanceof ApiError && e.status === 404) return [];
    throw e;
  }
}

async function loadAnnotations() {
  const id = app.slide.id;
  const h = status.busy("Loading annotations");
  try {
    const list = await fetchLatest();
    // Another slide may have been opened meanwhile.
    if (app.slide.id !== id) return;
    app.editor.load(list);
    app.annotationsLoaded = true;
    status.done(h, `${plural(list.length, "annotation")} loaded`);
  } catch (e) {
    status.fail(h, `Cannot load annotations: ${reason(e)}`);
  }
}

async function loadVersions() {
  const id = app.slide.id;
  try {
    const doc = await api.versions(id);
    if (app.slide.id !== id) return;
    app.versions = doc.versions || [];
    renderHistory(app.versions, revertTo);
    updateSlideMeta(app.slide.id, app.versions.length);
  } catch (e) {
    $("version-list").replaceChildren(
      el("li", {}, `Cannot load versions: ${reason(e)}`));
  }
}

// --- predict and save ---------------------------------------------------

function viewRegion() {
  const c = contentRegion();
  const v = app.transform.viewRegion();
  const r = clampRegion({ x: v.x - c.x, y: v.y - c.y, width: v.width,
    height: v.height }, c.width, c.height);
  return r && { x: r.x + c.x, y: r.y + c.y, width: r.width,
    height: r.height };
}

async function anyModelServed() {
  try {
    const { classes } = await api.models();
    return Object.values(classes).some((c) => c.current);
  } catch {
    return true; // the predict request itself will say what is wrong
  }
}

async function predictView() {
  if (!app.slide || app.predictAbort) return;
  const region = viewRegion();
  if (!region) {
    status.fail(null, "The view shows no part of the slide.");
    return;
  }
  const size = region.width * region.height;
  // Say at once when there is nothing to predict with, before asking
  // about a long wait.
  if (!(await anyModelServed())) {
    status.fail(null, "Prediction failed: no class has a model yet: " +
      "start one from the " +
      "Models tab (start missing models from scratch) or import one " +
      "with aapi import-model.");
    return;
  }
  if (size > LARGE_PREDICT_PIXELS && !confirm(`The view covers ` +
      `${region.width}×${region.height} px; prediction may take long. ` +
      "Zoom in, or continue?")) return;
  app.predictAbort = new AbortController();
  const h = status.busy(`Predicting ${region.width}×${region.height} px`,
    () => app.predictAbort && app.predictAbort.abort());
  updateButtons();
  try {
    const doc = await api.predict(app.slide.id, region,
      app.predictAbort.signal);
    const list = readGeoJSON(doc, "predicted",
      (n) => app.editor.classColor(n));
    app.editor.addPredictions(list, region);
    status.done(h, list.length === 0 ? "Nothing predicted in this view" :
      `${plural(list.length, "polygon")} predicted; accept or delete ` +
      "them, then save");
  } catch (e) {
    if (e.name === "AbortError") status.done(h, "Prediction cancelled");
    else status.fail(h, `Prediction failed: ${reason(e)}`);
  } finally {
    app.predictAbort = null;
    updateButtons();
  }
}

async function saveView() {
  if (!app.slide || app.saving) return;
  const region = viewRegion();
  if (!region) {
    status.fail(null, "The view shows no part of the slide.");
    return;
  }
  const save = app.editor.startSave(region);
  const list = save.list;
  const { body, contentType } = saveBody(list, app.editor.classes);
  app.saving = true;
  updateButtons();
  const h = status.busy(`Saving ${list.length} annotations in ` +
    `${region.width}×${region.height} px`);
  try {
    await api.save(app.slide.id, region, body, contentType);
  } catch (e) {
    // The edits stay in the page so that nothing is lost.
    status.fail(h, `Save failed: ${reason(e)}. Your edits are kept.`);
    app.saving = false;
    updateButtons();
    return;
  }
  try {
    app.editor.reloadKeeping(await fetchLatest(), save);
    await loadVersions();
    status.done(h, "Saved as a new version");
  } catch (e) {
    status.fail(h, `Saved, but reloading failed: ${reason(e)}`);
  } finally {
    app.saving = false;
    updateButtons();
  }
}

async function revertTo(seq) {
  const warn = app.editor.isDirty() ? " Your unsaved edits are dropped." : "";
  if (!confirm(`Make a new version equal to version #${seq}?${warn}`)) return;
  const h = status.busy(`Reverting to version #${seq}`);
  try {
    await api.revert(app.slide.id, seq);
    app.editor.load(await fetchLatest());
    await loadVersions();
    status.done(h, `Reverted to version #${seq}`);
  } catch (e) {
    status.fail(h, `Revert failed: ${reason(e)}`);
  }
}

// --- drawing and selection ------------------------------------------------

function setMode(mode) {
  app.mode = mode;
  if (mode === "draw") app.editor.startDraft();
  else app.editor.cancelDraft();
  $("btn-draw").classList.toggle("active", mode === "draw");
  $("viewer").classList.toggle("drawing", mode === "draw");
  $("draw-hint").hidden = mode !== "draw";
}

function finishDraft() {
  if (app.mode !== "draw") return;
  const a = app.editor.closeDraft();
  if (!a) {
    status.fail(null, "A polygon needs at least three vertices.");
    return;
  }
  setMode("select");
  app.editor.select(a);
}

function onCanvasClick(event) {
  event.preventDefaultAction = true;
  if (!event.quick || !app.transform || !app.transform.item()) return;
  const p = app.transform.toLevel0(event.position.x, event.position.y);
  const perPixel = 1 / app.transform.affine().s;
  if (app.mode === "draw") {
    app.editor.addVertex(p.x, p.y, 4 * perPixel);
  } else {
    app.editor.select(app.editor.hitTest(p.x, p.y, 5 * perPixel));
  }
}

function onPointerMove(event) {
  if (!app.transform || !app.transform.item()) return;
  const rect = $("viewer").getBoundingClientRect();
  const ex = event.clientX - rect.left, ey = event.clientY - rect.top;
  const p = app.transform.toLevel0(ex, ey);
  const zoom = app.transform.affine().s;
  const hud = $("hud");
  hud.hidden = false;
  hud.textContent = `x ${Math.round(p.x)}  y ${Math.round(p.y)}  ·  ` +
    (zoom >= 1 ? `${zoom.toFixed(1)}×` : `1:${(1 / zoom).toFixed(1)}`);
  if (app.editor.draft) {
    app.editor.draft.pointer = { x: ex, y: ey };
    app.overlay.invalidate();
  }
}

// --- rendering of the side panel -----------------------------------------

function renderClassPicker() {
  const box = $("class-picker");
  box.replaceChildren(...app.editor.classes.map((c, i) => el("label", {},
    el("input", { type: "radio", name: "class", value: String(i),
      onchange: () => app.editor.setClass(i) }),
    el("span", { class: "swatch", style: `background:${c.color}` }),
    c.name, i < 9 ? el("kbd", {}, String(i + 1)) : null)));
  box.querySelectorAll("input")[app.editor.classIndex].checked = true;
}

function describe(a) {
  const kinds = { saved: "saved", new: "new, not saved yet",
    predicted: "predicted, not accepted" };
  return `${a.name || "(no name)"} · ${a.group} · ${kinds[a.state]}`;
}

function renderSelection() {
  const a = app.editor.selected;
  $("selection").hidden = !a;
  if (!a) return;
  $("selection-text").textContent = describe(a);
  $("btn-accept").hidden = a.state !== "predicted";
}

function predictionRow(a) {
  return el("li", {},
    el("span", { class: "swatch dashed", style: `border-color:${a.color}` }),
    el("span", { class: "name", title: "Show it",
      onclick: () => showAnnotation(a) }, `${a.name} · ${a.group}`),
    el("button", { type: "button", class: "small",
      onclick: () => app.editor.accept(a) }, "Accept"),
    el("button", { type: "button", class: "small danger",
      onclick: () => app.editor.remove(a) }, "Delete"));
}

function renderPredictions() {
  const list = app.editor.predictions();
  $("predictions").hidden = list.length === 0;
  $("predictions-title").textContent = `${list.length} predictions`;
  $("prediction-list").replaceChildren(...list.map(predictionRow));
}

function renderLegend() {
  const counts = new Map();
  for (const a of app.editor.annotations) {
    if (a.state === "predicted") continue;
    counts.set(a.group, (counts.get(a.group) || 0) + 1);
  }
  $("legend").replaceChildren(...[...counts].map(([g, n]) => el("li", {},
    el("span", { class: "swatch",
      style: `background:${app.editor.classColor(g) || "#999"}` }),
    g, el("span", { class: "count" }, String(n)))));
  const p = app.editor.pending();
  $("pending").textContent = p.added + p.deleted === 0 ? "" :
    `Unsaved: ${p.added} new, ${p.deleted} deleted. ` +
    "Save the view that shows them.";
}

function render() {
  if (app.overlay) app.overlay.invalidate();
  if ($("class-picker").children.length !== app.editor.classes.length) {
    renderClassPicker();
  } else {
    $("class-picker").querySelectorAll("input")[app.editor.classIndex]
      .checked = true;
  }
  renderSelection();
  renderPredictions();
  renderLegend();
  updateButtons();
}

function updateButtons() {
  const open = !!app.slide;
  $("btn-draw").disabled = !open;
  $("btn-predict").disabled = !open || !!app.predictAbort;
  $("btn-save").disabled = !open || app.saving;
}

function showAnnotation(a) {
  const b = a.box;
  const m = Math.max(b.x1 - b.x0, b.y1 - b.y0) * 0.5 + 50;
  app.transform.fitLevel0({ x: b.x0 - m, y: b.y0 - m,
    width: b.x1 - b.x0 + 2 * m, height: b.y1 - b.y0 + 2 * m });
  app.editor.select(a);
}

// --- keyboard ---------------------------------------------------------------

function panBy(fx, fy) {
  const vp = app.viewer.viewport;
  const b = vp.getBounds();
  vp.panBy(new OpenSeadragon.Point(b.width * fx, b.height * fy));
}

const KEYS = {
  d: () => setMode(app.mode === "draw" ? "select" : "draw"),
  Enter: () => finishDraft(),
  Backspace: () => (app.editor.draft ? app.editor.undoVertex()
    : app.editor.remove(app.editor.selected)),
  Escape: () => (app.mode === "draw" ? setMode("select")
    : app.editor.select(null)),
  Delete: () => app.editor.remove(app.editor.selected),
  a: () => app.editor.accept(app.editor.selected),
  A: () => app.editor.acceptAll(),
  p: () => predictView(),
  s: () => saveView(),
  h: () => toggleAnnotations(),
  "+": () => app.viewer.viewport.zoomBy(1.5),
  "=": () => app.viewer.viewport.zoomBy(1.5),
  "-": () => app.viewer.viewport.zoomBy(1 / 1.5),
  0: () => app.viewer.viewport.goHome(),
  ArrowLeft: () => panBy(-0.2, 0),
  ArrowRight: () => panBy(0.2, 0),
  ArrowUp: () => panBy(0, -0.2),
  ArrowDown: () => panBy(0, 0.2),
};

function onKey(event) {
  const t = event.target;
  if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" ||
      t.tagName === "SELECT" || t.isContentEditable) &&
      t.type !== "radio" && t.type !== "checkbox") return;
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (!app.slide) return;
  const n = Number(event.key);
  if (Number.isInteger(n) && n >= 1 && n <= 9) {
    app.editor.setClass(n - 1);
    event.preventDefault();
    return;
  }
  const fn = KEYS[event.key];
  if (!fn) return;
  event.preventDefault();
  fn();
  app.viewer.viewport.applyConstraints();
}

function toggleAnnotations() {
  app.overlay.visible = !app.overlay.visible;
  $("show-annotations").checked = app.overlay.visible;
  app.overlay.invalidate();
}

// --- tabs and models --------------------------------------------------------

async function loadModels() {
  try {
    renderModels(await api.models(), (n) => app.editor.classColor(n));
  } catch (e) {
    $("model-legend").replaceChildren(
      el("li", {}, `Cannot load models: ${reason(e)}`));
  }
}

function showTab(name) {
  for (const b of document.querySelectorAll(".tabs button")) {
    b.setAttribute("aria-selected", String(b.dataset.tab === name));
  }
  for (const t of ["annotate", "history", "models"]) {
    $(`tab-${t}`).hidden = t !== name;
  }
  if (name === "models") {
    loadModels();
    app.poller.start();
  } else {
    app.poller.stop();
  }
}

async function startTraining() {
  const h = status.busy("Starting a training cycle");
  try {
    const options = { bootstrap: $("train-bootstrap").checked };
    if ($("train-class").value) options.class = $("train-class").value;
    await api.train(options);
    status.done(h, "Training cycle started");
    app.poller.poll();
  } catch (e) {
    status.fail(h, `Cannot start training: ${reason(e)}`);
  }
}

// --- setup ------------------------------------------------------------------

function makeViewer() {
  const viewer = OpenSeadragon({
    element: $("viewer"),
    prefixUrl: "vendor/openseadragon/images/",
    drawer: "canvas",
    showNavigator: true,
    navigatorPosition: "BOTTOM_LEFT",
    showRotationControl: false,
    keyboardNavEnabled: false,
    gestureSettingsMouse: { clickToZoom: false, dblClickToZoom: false },
    maxZoomPixelRatio: 2,
    visibilityRatio: 0.3,
    zoomPerScroll: 1.4,
    timeout: 120000,
  });
  viewer.addHandler("canvas-click", onCanvasClick);
  viewer.addHandler("canvas-double-click", (event) => {
    event.preventDefaultAction = true;
  });
  viewer.addHandler("open", () => {
    app.ready = true;
  });
  viewer.addHandler("open-failed", (e) => {
    status.fail(null, `Cannot open the slide's tiles: ${e.message}`);
  });
  $("viewer").addEventListener("pointermove", onPointerMove);
  // The browser's own double-click event: OpenSeadragon's depends on its
  // pointer timing and misses some.
  $("viewer").addEventListener("dblclick", () => finishDraft());
  return viewer;
}

function wireControls() {
  const token = $("token");
  token.value = getToken();
  token.addEventListener("change", () => {
    setToken(token.value.trim());
    // A token may open what a refused read had hidden.
    if (app.slides.length === 0) loadSlides().then(openFirstSlide);
  });
  $("btn-draw").addEventListener("click",
    () => setMode(app.mode === "draw" ? "select" : "draw"));
  $("btn-predict").addEventListener("click", predictView);
  $("btn-save").addEventListener("click", saveView);
  $("btn-accept").addEventListener("click",
    () => app.editor.accept(app.editor.selected));
  $("btn-delete").addEventListener("click",
    () => app.editor.remove(app.editor.selected));
  $("btn-accept-all").addEventListener("click", () => app.editor.acceptAll());
  $("btn-discard-all").addEventListener("click",
    () => app.editor.discardPredictions());
  $("show-annotations").addEventListener("change", toggleAnnotations);
  $("btn-train").addEventListener("click", startTraining);
  for (const b of document.querySelectorAll(".tabs button")) {
    b.addEventListener("click", () => showTab(b.dataset.tab));
  }
  document.addEventListener("keydown", onKey);
  window.addEventListener("beforeunload", (event) => {
    if (app.editor.isDirty()) event.preventDefault();
  });
}

// Hooks for the end-to-end tests and for debugging from the console.
function exposeForTests() {
  window.aapiViewer = {
    app,
    level0ToElement: (x, y) => app.transform.toElement(x, y),
    elementToLevel0: (x, y) => app.transform.toLevel0(x, y),
    fitLevel0: (box) => app.transform.fitLevel0(box, true),
    isReady: () => !!(app.ready && app.annotationsLoaded &&
      app.viewer.world.getItemAt(0)),
    fullyLoaded: () => {
      const item = app.viewer.world.getItemAt(0);
      return !!item && item.getFullyLoaded() && isAnimationDone();
    },
    annotationCount: () => app.editor.annotations.length,
    overlayStats: () => app.overlay.stats,
  };
}

function isAnimationDone() {
  const vp = app.viewer.viewport;
  return Math.abs(vp.getZoom(true) - vp.getZoom(false)) < 1e-9 &&
    vp.getCenter(true).distanceTo(vp.getCenter(false)) < 1e-9;
}

async function main() {
  status.initStatus();
  app.editor = new Editor(render);
  app.viewer = makeViewer();
  app.overlay = new Overlay(app.viewer, null, app.editor);
  app.poller = new JobPoller((e) => {
    $("job").textContent = `Cannot read training jobs: ${reason(e)}`;
  }, () => loadModels());
  wireControls();
  render();
  exposeForTests();
  await loadSlides();
  await openFirstSlide();
}

// The slide named in the address (?slide=<id>), else the first one.
async function openFirstSlide() {
  if (app.slide) return;
  const wanted = new URL(location.href).searchParams.get("slide");
  const first = wanted || (app.slides[0] && app.slides[0].id);
  if (first) await openSlide(first);
}

main();
