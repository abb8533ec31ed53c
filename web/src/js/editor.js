// What the user changes before a save: annotations shown, predictions not
// yet accepted, deletions, the selection and the polygon being drawn.

import { DEFAULT_CLASSES, makeAnnotation } from "./annotations.js";
import {
  boxContains, boxesTouch, regionBox, ringArea, ringContains, ringDistance,
} from "./geometry.js";

// Same shape, same name: how a pending deletion finds its annotation again
// after the annotations are reloaded.
function sameAnnotation(a, b) {
  const p = a.parts[0][0], q = b.parts[0][0];
  return a.name === b.name && p.length === q.length &&
    p[0][0] === q[0][0] && p[0][1] === q[0][1];
}

export class Editor {
  constructor(onChange) {
    this.onChange = onChange;
    this.annotations = [];
    this.deleted = [];
    this.selected = null;
    this.draft = null;
    this.classes = DEFAULT_CLASSES.map((c) => ({ ...c }));
    this.classIndex = 0;
  }

  changed() {
    this.onChange();
  }

  // Learns classes (and their colours) from loaded annotations.
  learnClasses(list) {
    for (const a of list) {
      if (!a.group || a.group === "None") continue;
      if (!this.classes.some((c) => c.name === a.group)) {
        this.classes.push({ name: a.group, color: a.color });
      }
    }
  }

  classColor(name) {
    const c = this.classes.find((k) => k.name === name);
    return c ? c.color : null;
  }

  currentClass() {
    return this.classes[this.classIndex] || this.classes[0];
  }

  setClass(index) {
    if (index < 0 || index >= this.classes.length) return;
    this.classIndex = index;
    if (this.draft) {
      this.draft.group = this.currentClass().name;
      this.draft.color = this.currentClass().color;
    }
    this.changed();
  }

  // Replaces everything with a freshly loaded version.
  load(saved) {
    this.learnClasses(saved);
    this.annotations = saved;
    this.deleted = [];
    this.selected = null;
    this.changed();
  }

  // What a save of region posts, and what it settles: the deletions
  // touching the region at the time of the post.
  startSave(region) {
    const box = regionBox(region);
    const posted = this.toSave(region);
    return { region, posted: new Set(posted), list: posted,
      settled: new Set(this.deleted.filter((d) => boxesTouch(d.box, box))) };
  }

  // After a save: the new version replaces the saved annotations; edits
  // the save did not carry (outside the region, or made while it ran) and
  // predictions stay pending in the page.
  reloadKeeping(saved, save) {
    const keep = this.annotations.filter((a) => a.state === "predicted" ||
      (a.state === "new" && !save.posted.has(a)));
    const stillDeleted = this.deleted.filter((d) => !save.settled.has(d));
    const shown = saved.filter((s) =>
      !stillDeleted.some((d) => sameAnnotation(d, s)));
    this.learnClasses(saved);
    this.annotations = shown.concat(keep);
    this.deleted = stillDeleted;
    this.selected = null;
    this.changed();
  }

  // New predictions replace older, unaccepted ones in the same region.
  addPredictions(list, region) {
    const box = regionBox(region);
    this.learnClasses(list);
    this.annotations = this.annotations.filter((a) =>
      a.state !== "predicted" || !boxesTouch(a.box, box)).concat(list);
    this.changed();
  }

  predictions() {
    return this.annotations.filter((a) => a.state === "predicted");
  }

  // The annotation under a level-0 point: the smallest one containing it,
  // else the nearest outline within tolerance.
  hitTest(x, y, tolerance) {
    let best = null, bestArea = Infinity, near = null, nearDist = tolerance;
    for (const a of this.annotations) {
      const b = a.box;
      const grown = { x0: b.x0 - tolerance, y0: b.y0 - tolerance,
        x1: b.x1 + tolerance, y1: b.y1 + tolerance };
      if (!boxContains(grown, x, y)) continue;
      for (const part of a.parts) {
        if (ringContains(part[0], x, y)) {
          const area = ringArea(part[0]);
          if (area < bestArea) {
            best = a;
            bestArea = area;
          }
        }
        const d = ringDistance(part[0], x, y);
        if (d <= nearDist) {
          near = a;
          nearDist = d;
        }
      }
    }
    return best || near;
  }

  select(a) {
    this.selected = a || null;
    this.changed();
  }

  remove(a) {
    if (!a) return;
    this.annotations = this.annotations.filter((x) => x !== a);
    if (a.state === "saved") this.deleted.push(a);
    if (this.selected === a) this.selected = null;
    this.changed();
  }

  accept(a) {
    if (!a || a.state !== "predicted") return;
    a.state = "new";
    this.changed();
  }

  acceptAll() {
    for (const a of this.predictions()) a.state = "new";
    this.changed();
  }

  discardPredictions() {
    this.annotations = this.annotations.filter((a) => a.state !== "predicted");
    if (this.selected && this.selected.state === "predicted") {
      this.selected = null;
    }
    this.changed();
  }

  pending() {
    return {
      added: this.annotations.filter((a) => a.state === "new").length,
      deleted: this.deleted.length,
    };
  }

  isDirty() {
    const p = this.pending();
    return p.added + p.deleted > 0;
  }

  // What a save of region posts: every kept annotation touching it.
  toSave(region) {
    const box = regionBox(region);
    return this.annotations.filter((a) => a.state !== "predicted" &&
      boxesTouch(a.box, box));
  }

  // A name in the server's style, <Class>_<NNN>, not used yet.
  nextName(group) {
    const re = new RegExp(`^${group.replace(/\W/g, "\\$&")}_(\\d+)$`);
    let max = -1;
    for (const a of this.annotations.concat(this.deleted)) {
      const m = re.exec(a.name);
      if (m) max = Math.max(max, Number(m[1]));
    }
    return `${group}_${String(max + 1).padStart(3, "0")}`;
  }

  startDraft() {
    const c = this.currentClass();
    this.draft = { points: [], group: c.name, color: c.color, pointer: null };
    this.selected = null;
    this.changed();
  }

  addVertex(x, y, minDistance) {
    const pts = this.draft.points;
    const last = pts[pts.length - 1];
    // The two clicks of a double-click land on one spot: one vertex.
    if (last && Math.hypot(last[0] - x, last[1] - y) < minDistance) return;
    pts.push([x, y]);
    this.changed();
  }

  undoVertex() {
    if (this.draft) this.draft.points.pop();
    this.changed();
  }

  // Turns the draft into a new annotation; null when it has < 3 vertices.
  closeDraft() {
    const d = this.draft;
    if (!d || d.points.length < 3) return null;
    const a = makeAnnotation({
      name: this.nextName(d.group), type: "Polygon", group: d.group,
      color: d.color, parts: [[d.points]], state: "new",
    });
    this.annotations.push(a);
    this.draft = null;
    this.selected = a;
    this.changed();
    return a;
  }

  cancelDraft() {
    this.draft = null;
    this.changed();
  }
}
