// The history panel (versions, revert) and the models panel (F1 chart,
// training progress).

import { api } from "./api.js";
import { drawF1Chart } from "./chart.js";

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c !== null && c !== undefined) e.append(c);
  }
  return e;
}
export { el };

export function formatTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso || "");
  return d.toLocaleString(undefined, { year: "numeric", month: "short",
    day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
    hour12: false });
}

function formatRegion(r) {
  if (!r) return "whole slide";
  if (r.width >= 1e8 || r.height >= 1e8) return "whole slide";
  return `${r.width}×${r.height} px at (${r.x}, ${r.y})`;
}

// versions: oldest first, as the API gives them.  onRevert(seq).
export function renderHistory(versions, onRevert) {
  const list = $("version-list");
  list.replaceChildren();
  if (versions.length === 0) {
    list.append(el("li", {}, "No versions yet."));
    return;
  }
  const newest = versions[versions.length - 1].seq;
  for (const v of versions.slice().reverse()) {
    const latest = v.seq === newest;
    list.append(el("li", { "data-seq": String(v.seq) },
      el("span", { class: "when" }, `#${v.seq} · ${formatTime(v.time)} `,
        latest ? el("span", { class: "latest" }, "current") : null),
      el("span", { class: "meta" },
        `${v.count} annotations · ${formatRegion(v.region)}`),
      el("button", { type: "button", class: "small",
        title: "Make a new version equal to this one",
        onclick: () => onRevert(v.seq) }, "Revert"),
    ));
    if (latest) list.lastChild.querySelector("button").disabled = true;
  }
}

// models: {classes: {Name: {current, versions: [...]}}}
export function renderModels(models, classColor) {
  const classes = Object.entries((models && models.classes) || {})
    .map(([name, c]) => ({
      name, color: c.color || classColor(name) || "#777777",
      current: c.current,
      versions: c.versions || [],
    }));
  drawF1Chart($("f1-chart"), classes);
  const select = $("train-class");
  if (select.options.length !== classes.length + 1) {
    select.replaceChildren(el("option", { value: "" }, "all"),
      ...classes.map((c) => el("option", { value: c.name }, c.name)));
  }
  const legend = $("model-legend");
  legend.replaceChildren();
  if (classes.length === 0) {
    legend.append(el("li", {}, "No models loaded."));
  }
  for (const c of classes) {
    const cur = c.versions.find((v) => v.version === c.current);
    const f1 = cur && typeof cur.f1 === "number" ? cur.f1.toFixed(3) : "–";
    legend.append(el("li", { title: `in use: ${c.current || "none"}` },
      el("span", { class: "swatch", style: `background:${c.color}` }),
      c.name, el("span", { class: "count" },
        `F1 ${f1} · ${c.versions.length} versions`)));
  }
}

// Share of a running cycle that is done; epochs count from 1, batches
// from 1 within an epoch.
function jobFraction(r) {
  const epochs = Math.max(1, r.epochs || 1);
  const batches = Math.max(1, r.batches || 1);
  const epoch = Math.max(0, (r.epoch || 1) - 1);
  return Math.min(1, (epoch * batches + (r.batch || 0)) / (epochs * batches));
}

export function renderJobs(jobs) {
  const box = $("job");
  const r = jobs && jobs.running;
  box.replaceChildren();
  const enabled = !jobs || jobs.enabled !== false;
  $("btn-train").disabled = !!r || !enabled;
  if (!enabled) {
    box.append("Training is off on this server.");
  } else if (!r) {
    box.append("No training cycle is running.");
  } else {
    const pct = Math.round(jobFraction(r) * 100);
    const loss = typeof r.loss === "number" ? r.loss.toFixed(4) : "–";
    // Before the first batch there are no epochs to count yet.
    const steps = r.epochs > 0 ? ` · epoch ${r.epoch}/${r.epochs} · ` +
      `batch ${r.batch}/${r.batches}` : "";
    box.append(el("div", {}, el("strong", {}, `Training ${r.class || ""}`),
      r.phase ? ` · ${r.phase}` : "", steps),
      el("div", { class: "progress", role: "progressbar",
        "aria-valuenow": String(pct) },
        el("div", { style: `width:${pct}%` })),
      el("div", { class: "hint" }, `${pct} % · loss ${loss}`));
  }
  const runs = $("run-list");
  runs.replaceChildren();
  const newest = ((jobs && jobs.runs) || []).slice()
    .sort((a, b) => (b.id || 0) - (a.id || 0)).slice(0, 8);
  for (const run of newest) {
    const f1 = (v) => (typeof v === "number" ? v.toFixed(3) : "–");
    runs.append(el("li", {},
      `${formatTime(run.finished || run.started)} · ${run.class}: ` +
      `F1 ${f1(run.f1_before)} → ${f1(run.f1_after)} · ` +
      `${run.decision || "running"}`,
      run.detail ? el("span", { class: "detail" }, run.detail) : null));
  }
}

// Polls /api/v1/jobs while the models tab is open; refreshes the chart
// when a cycle ends.
export class JobPoller {
  constructor(onError, onCycleEnd) {
    this.timer = null;
    this.wasRunning = false;
    this.onError = onError;
    this.onCycleEnd = onCycleEnd;
  }

  async poll() {
    try {
      const jobs = await api.jobs();
      renderJobs(jobs);
      if (this.wasRunning && !jobs.running) this.onCycleEnd();
      this.wasRunning = !!jobs.running;
    } catch (e) {
      this.onError(e);
    }
  }

  start() {
    if (this.timer) return;
    this.poll();
    this.timer = setInterval(() => this.poll(), 3000);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
  }
}
