// Quarantine review: draw, move, resize and delete blackout rectangles on the held
// object's frames, with OCR's proposals drawn first, and preview the server's blackout.
// The rectangles travel in the form's text field ("x,y,w,h" a line, image pixels), so
// release has one server path with or without this script.
const root = document.getElementById("redact");
const field = document.getElementById("rectangles");
const frameImg = document.getElementById("redact-frame");
const svg = document.getElementById("redact-overlay");
const status = document.getElementById("ocr-status");
const slider = document.getElementById("frame-slider");
const label = document.getElementById("frame-label");
const previewButton = document.getElementById("preview-toggle");
const deleteButton = document.getElementById("rect-delete");
const SVG_NS = "http://www.w3.org/2000/svg";
const frames = Number(root.dataset.frames);
const columns = Number(root.dataset.columns);
const rows = Number(root.dataset.rows);
const EDGE_PX = 8; // screen pixels from an edge that grab it for resizing

let rects = []; // {x, y, w, h, proposed}
let selected = -1;
let frame = 1;
let previewing = false;
let drag = null;
let textFrames = new Set();

function clamp(v, lo, hi) { return Math.max(lo, Math.min(hi, v)); }

function parseField() {
  const out = [];
  for (const line of field.value.split(/[\n;]/)) {
    const parts = line.split(",").map((p) => Number(p.trim()));
    if (parts.length === 4 && parts.every(Number.isInteger) && parts[2] > 0 && parts[3] > 0) {
      out.push({ x: parts[0], y: parts[1], w: parts[2], h: parts[3], proposed: false });
    }
  }
  return out;
}

function serialise() {
  return rects.map((r) => [r.x, r.y, r.w, r.h].join(",")).join("\n");
}

function sync() {
  field.value = serialise();
  deleteButton.disabled = selected < 0;
  draw();
}

function draw() {
  svg.replaceChildren();
  rects.forEach((r, i) => {
    const el = document.createElementNS(SVG_NS, "rect");
    el.setAttribute("x", r.x);
    el.setAttribute("y", r.y);
    el.setAttribute("width", r.w);
    el.setAttribute("height", r.h);
    el.setAttribute("class", `redact-rect${r.proposed ? " proposed" : ""}${i === selected ? " selected" : ""}`);
    el.dataset.index = String(i);
    svg.append(el);
  });
}

function toImage(event) {
  const box = svg.getBoundingClientRect();
  return {
    x: clamp(Math.round(((event.clientX - box.left) * columns) / box.width), 0, columns),
    y: clamp(Math.round(((event.clientY - box.top) * rows) / box.height), 0, rows),
    scale: columns / box.width,
  };
}

function hit(point) {
  // the topmost rectangle under the point, and which of its edges are within reach
  for (let i = rects.length - 1; i >= 0; i -= 1) {
    const r = rects[i];
    const reach = EDGE_PX * point.scale;
    if (point.x < r.x - reach || point.x > r.x + r.w + reach ||
        point.y < r.y - reach || point.y > r.y + r.h + reach) continue;
    const edges = {
      left: Math.abs(point.x - r.x) <= reach,
      right: Math.abs(point.x - (r.x + r.w)) <= reach,
      top: Math.abs(point.y - r.y) <= reach,
      bottom: Math.abs(point.y - (r.y + r.h)) <= reach,
    };
    const inside = point.x >= r.x && point.x <= r.x + r.w && point.y >= r.y && point.y <= r.y + r.h;
    if (inside || Object.values(edges).some(Boolean)) return { index: i, edges };
  }
  return null;
}

svg.addEventListener("pointerdown", (event) => {
  if (previewing || event.button !== 0) return;
  event.preventDefault();
  svg.setPointerCapture(event.pointerId);
  const point = toImage(event);
  const found = hit(point);
  if (found) {
    selected = found.index;
    const r = rects[selected];
    const resizing = Object.values(found.edges).some(Boolean);
    drag = { mode: resizing ? "resize" : "move", edges: found.edges, start: point, orig: { ...r } };
  } else {
    rects.push({ x: point.x, y: point.y, w: 0, h: 0, proposed: false });
    selected = rects.length - 1;
    drag = { mode: "new", start: point, orig: null };
  }
  sync();
});

svg.addEventListener("pointermove", (event) => {
  if (!drag) return;
  const point = toImage(event);
  const r = rects[selected];
  if (drag.mode === "new") {
    r.x = Math.min(drag.start.x, point.x);
    r.y = Math.min(drag.start.y, point.y);
    r.w = Math.abs(point.x - drag.start.x);
    r.h = Math.abs(point.y - drag.start.y);
  } else if (drag.mode === "move") {
    const o = drag.orig;
    r.x = clamp(o.x + point.x - drag.start.x, 0, columns - o.w);
    r.y = clamp(o.y + point.y - drag.start.y, 0, rows - o.h);
  } else {
    const o = drag.orig;
    let [x0, y0, x1, y1] = [o.x, o.y, o.x + o.w, o.y + o.h];
    if (drag.edges.left) x0 = point.x;
    if (drag.edges.right) x1 = point.x;
    if (drag.edges.top) y0 = point.y;
    if (drag.edges.bottom) y1 = point.y;
    [r.x, r.w] = [Math.min(x0, x1), Math.abs(x1 - x0)];
    [r.y, r.h] = [Math.min(y0, y1), Math.abs(y1 - y0)];
  }
  r.proposed = false;
  draw();
});

function endDrag() {
  if (!drag) return;
  const r = rects[selected];
  if (r && (r.w < 2 || r.h < 2) && drag.mode !== "move") {
    rects.splice(selected, 1); // a click, not a drag: nothing drawn
    selected = -1;
  }
  drag = null;
  sync();
}
svg.addEventListener("pointerup", endDrag);
svg.addEventListener("pointercancel", endDrag);

function deleteSelected() {
  if (selected < 0) return;
  rects.splice(selected, 1);
  selected = -1;
  sync();
}
deleteButton.addEventListener("click", deleteSelected);
document.addEventListener("keydown", (event) => {
  if ((event.key === "Delete" || event.key === "Backspace") && selected >= 0 &&
      event.target === document.body) {
    event.preventDefault();
    deleteSelected();
  }
});

function frameUrl() {
  if (!previewing) return `${root.dataset.image}?frame=${frame}`;
  const params = new URLSearchParams({ frame: String(frame), rectangles: rects.map((r) => [r.x, r.y, r.w, r.h].join(",")).join(";") });
  return `${root.dataset.preview}?${params}`;
}

function show(n) {
  frame = clamp(n, 1, frames);
  slider.value = String(frame);
  frameImg.src = frameUrl();
  frameImg.alt = `${previewing ? "Blackout preview of frame" : "Frame"} ${frame} of the held object`;
  label.textContent = `${previewing ? "Preview of frame" : "Frame"} ${frame} of ${frames}` +
    (textFrames.has(frame) ? " · OCR read text here" : "");
  for (const link of root.querySelectorAll(".redact-strip a")) {
    link.classList.toggle("current", Number(link.dataset.frame) === frame);
  }
}

previewButton.addEventListener("click", () => {
  previewing = !previewing;
  svg.classList.toggle("ready", !previewing);
  previewButton.textContent = previewing ? "Back to the rectangles" : "Preview blackout";
  previewButton.setAttribute("aria-pressed", String(previewing));
  show(frame);
});
slider.addEventListener("input", () => show(Number(slider.value)));
document.getElementById("frame-prev").addEventListener("click", () => show(frame - 1));
document.getElementById("frame-next").addEventListener("click", () => show(frame + 1));
for (const link of root.querySelectorAll(".redact-strip a")) {
  link.addEventListener("click", (event) => {
    event.preventDefault();
    show(Number(link.dataset.frame));
  });
}

async function loadProposals() {
  status.textContent = "OCR is reading every frame for text…";
  try {
    const response = await fetch(root.dataset.ocr, { credentials: "same-origin" });
    if (!response.ok) throw new Error(String(response.status));
    const result = await response.json();
    status.textContent = result.message;
    if (!result.available) return;
    textFrames = new Set(Object.keys(result.by_frame).map(Number));
    for (const link of root.querySelectorAll(".redact-strip a")) {
      link.classList.toggle("has-text", textFrames.has(Number(link.dataset.frame)));
    }
    if (rects.length === 0) {
      rects = result.rectangles.map(([x, y, w, h]) => ({ x, y, w, h, proposed: true }));
      status.textContent += ` ${rects.length} rectangle${rects.length === 1 ? "" : "s"} proposed.`;
    }
    sync();
    show(frame);
  } catch {
    status.textContent = "OCR proposals could not be loaded; draw the rectangles yourself.";
  }
}

// Keyboard users (and anyone who wants exact numbers) can still type the rectangles.
const textField = document.getElementById("rectangles-field");
const textToggle = document.getElementById("text-toggle");
textToggle.addEventListener("click", () => {
  textField.hidden = !textField.hidden;
  textToggle.setAttribute("aria-expanded", String(!textField.hidden));
  textToggle.textContent = textField.hidden ? "Edit as text" : "Hide the text";
});
field.addEventListener("input", () => {
  rects = parseField();
  selected = -1;
  deleteButton.disabled = true;
  draw();
});

// The script runs: switch from the typed fallback to drawing.
textField.hidden = true;
for (const el of root.querySelectorAll("[hidden]")) el.hidden = false;
svg.classList.add("ready"); // hidden by the style sheet until this script can drive it
rects = parseField();
sync();
show(1);
loadProposals();
