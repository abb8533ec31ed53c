// A small line chart of each class's F1 across its model versions, drawn
// on a canvas: one line per class, filled dots for promoted versions,
// hollow ones for rejected versions, a ring around the version in use.

const PAD = { left: 34, right: 10, top: 10, bottom: 22 };

function setupCanvas(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 280;
  const h = canvas.clientHeight || 160;
  canvas.width = Math.round(w * dpr);
  canvas.height = Math.round(h * dpr);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  return { ctx, w, h };
}

function drawAxes(ctx, w, h, nMax) {
  ctx.strokeStyle = "#c8ccd2";
  ctx.fillStyle = "#5b6370";
  ctx.font = "11px system-ui, sans-serif";
  ctx.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = PAD.top + ((h - PAD.top - PAD.bottom) * i) / 4;
    ctx.beginPath();
    ctx.moveTo(PAD.left, y + 0.5);
    ctx.lineTo(w - PAD.right, y + 0.5);
    ctx.stroke();
    ctx.textAlign = "right";
    ctx.fillText((1 - i / 4).toFixed(2), PAD.left - 4, y + 4);
  }
  ctx.textAlign = "center";
  ctx.fillText(nMax > 1 ? `model versions (1 … ${nMax})` : "model version",
    (w + PAD.left) / 2, h - 6);
}

// classes: [{name, color, current, versions: [{version, f1, promoted}]}]
export function drawF1Chart(canvas, classes) {
  const { ctx, w, h } = setupCanvas(canvas);
  const nMax = Math.max(1, ...classes.map((c) => c.versions.length));
  drawAxes(ctx, w, h, nMax);
  if (!classes.some((c) => c.versions.length)) {
    ctx.fillStyle = "#666666";
    ctx.font = "13px sans-serif";
    ctx.textAlign = "center";
    ctx.fillText("No model has been trained or imported yet.",
      (PAD.left + w - PAD.right) / 2, (PAD.top + h - PAD.bottom) / 2);
    return;
  }
  const x = (i) => PAD.left + (nMax === 1 ? 0.5 :
    i / (nMax - 1)) * (w - PAD.left - PAD.right);
  const y = (f1) => PAD.top + (1 - f1) * (h - PAD.top - PAD.bottom);
  for (const c of classes) {
    const pts = c.versions.map((v, i) => ({ v, x: x(i),
      y: typeof v.f1 === "number" ? y(Math.max(0, Math.min(1, v.f1))) : null,
    })).filter((p) => p.y !== null);
    ctx.strokeStyle = c.color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    pts.forEach((p, i) => (i ? ctx.lineTo(p.x, p.y) : ctx.moveTo(p.x, p.y)));
    ctx.stroke();
    for (const p of pts) {
      ctx.beginPath();
      ctx.arc(p.x, p.y, 3.5, 0, 2 * Math.PI);
      ctx.fillStyle = p.v.promoted === false ? "#ffffff" : c.color;
      ctx.fill();
      ctx.stroke();
      if (p.v.version === c.current) {
        ctx.beginPath();
        ctx.arc(p.x, p.y, 6.5, 0, 2 * Math.PI);
        ctx.lineWidth = 1;
        ctx.stroke();
        ctx.lineWidth = 2;
      }
    }
  }
}
