// Teachfile image viewer: a stack of server-rendered frames, for slow links.
//
// Embedding: a <section class="viewer" data-study data-series data-index ...> made by
// templates/images/_viewer.html. The first frame is already in the HTML; this module
// loads the series' metadata, then fetches the current frame first and a small window
// around it that follows the reader's scrolling, aborting requests left behind. Frames
// are rendered by the server (window/level, invert, viewport), measured on the server
// (ROI mean/SD on the real values), and annotations live in the case's JSON API.
//
// Pick mode (data-pick="1", hotspot questions): the "Mark the abnormality" tool, selected
// first, marks a clicked point on that image only and dispatches a bubbling `viewer:pick`
// CustomEvent on the section with {series, index (1-based in the series' stack, as the
// server's quizzes.series_stack counts: instances in order, frames expanded), x, y (image
// pixels)}. Clicks off the image are ignored. data-picked="index,x,y" is a mark already
// made on the series opened first (drawn in any mode). data-target='{"frames": [first, last],
// "region": {"shape": "ellipse", cx, cy, rx, ry} | {"shape": "polygon", points}}' is a
// hotspot's answer, given only with feedback: outlined on those images of that series.

const SVGNS = "http://www.w3.org/2000/svg";
const QUALITY = 80;
const VIEWPORT = 512;
const AHEAD = 4;
const BEHIND = 2;
const CINE_AHEAD = 10;
const PARALLEL = 2;
const RETRY_AFTER_MS = 10000; // a frame that failed is not prefetched again for 10 s
const KEEP = 400; // frames kept in memory (object URLs)
const DRAG_STEP = 8; // CSS pixels of dragging per slice
const VISIBILITY = [
  ["only_me", "Only me"],
  ["institution", "My institution"],
  ["case_readers", "Everyone who can see the case"],
];
const KIND_NAMES = { arrow: "Arrow", line: "Line", ellipse: "Ellipse", text: "Text" };

function make(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

function shape(tag, attrs = {}) {
  const node = document.createElementNS(SVGNS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  return node;
}

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

async function sendJson(method, url, body) {
  const response = await fetch(url, {
    method,
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = response.status === 204 ? {} : await response.json().catch(() => ({}));
  // The identifier gate (422 with findings): show the writer what looked like an
  // identifier and send again only if they confirm that none identifies a patient.
  if (response.status === 422 && Array.isArray(data.findings) && body && !body.confirm_identifiers) {
    const lines = data.findings.map((f) => `- ${f.kind}: ${f.excerpt}`).join("\n");
    if (window.confirm(`${data.error}\n\n${lines}\n\nNone of these identifies a patient: save anyway?`)) {
      return sendJson(method, url, { ...body, confirm_identifiers: true });
    }
  }
  if (!response.ok) throw new Error(data.error || `The server answered ${response.status}.`);
  return data;
}

const round1 = (v) => Math.round(v * 10) / 10;
const round2 = (v) => Math.round(v * 100) / 100;

class Viewer {
  constructor(root) {
    this.root = root;
    const ds = root.dataset;
    this.base = ds.imagesBase || "/images";
    this.study = ds.study;
    this.series = ds.series;
    this.index = Number(ds.index) || 0;
    this.saveData = ds.saveData === "1" || Boolean(navigator.connection && navigator.connection.saveData);
    this.notesUrl = ds.annotationsUrl || "";
    this.signedIn = ds.signedIn === "1";
    this.canTeach = ds.canTeach === "1";
    this.stage = root.querySelector(".viewer-stage");
    this.layer = root.querySelector(".viewer-layer");
    this.img = root.querySelector(".viewer-image");
    this.counter = root.querySelector(".viewer-counter");
    this.windowLabel = root.querySelector(".viewer-window");
    this.loading = root.querySelector(".viewer-loading");
    this.readout = root.querySelector(".viewer-readout");
    this.notesList = root.querySelector(".viewer-notes");
    this.overlay = shape("svg", { class: "viewer-overlay", "aria-hidden": "true" });
    this.layer.append(this.overlay);
    this.frames = [];
    this.meta = null;
    this.window = null; // null: the object's own window
    this.invert = false;
    this.zoom = 1;
    this.panX = 0;
    this.panY = 0;
    this.pickMode = ds.pick === "1";
    this.tool = this.pickMode ? "pick" : "scroll";
    this.pick = null; // the reader's mark: {uid, frame, x, y}
    const picked = (ds.picked || "").split(",").map(Number);
    this.picked = picked.length === 3 && picked.every(Number.isFinite) ? { series: this.series, index: picked[0], x: picked[1], y: picked[2] } : null;
    this.target = null;
    try {
      const t = ds.target ? JSON.parse(ds.target) : null;
      if (t && Array.isArray(t.frames) && t.region) this.target = { series: this.series, ...t };
    } catch {
      this.target = null;
    }
    this.direction = 1;
    this.blobs = new Map(); // url -> object URL (or the first frame's own URL), oldest first
    this.inflight = new Map(); // url -> {controller, promise}
    this.failed = new Map(); // url -> when it last failed
    this.measures = new Map(); // "uid/frame" -> [{kind, points, label}]
    this.notes = [];
    this.showTeaching = true;
    this.cine = null;
    this.draft = null;
    this.shownUrl = this.img.getAttribute("src");
    if (this.shownUrl) this.blobs.set(this.shownUrl, this.shownUrl);
    this.buildToolbar();
    this.stage.dataset.tool = this.tool;
    this.bind();
    this.load(this.series, this.index);
  }

  // ---- data -------------------------------------------------------------

  async load(series, index) {
    this.stopCine();
    this.series = series;
    for (const item of this.root.querySelectorAll(".viewer-series-item")) {
      item.setAttribute("aria-pressed", String(item.dataset.series === series));
    }
    this.setState("loading");
    // data-neutral (unknowns, quiz questions): the metadata without the series description.
    const neutral = this.root.dataset.neutral === "1" ? "?neutral=1" : "";
    const url = `${this.base}/studies/${this.study}/series/${series}/metadata${neutral}`;
    let meta;
    try {
      const response = await fetch(url, { credentials: "same-origin" });
      if (!response.ok) throw new Error(`The server answered ${response.status}.`);
      meta = await response.json();
    } catch (err) {
      this.loading.textContent = `Could not load the series: ${err.message}`;
      return;
    }
    this.meta = meta;
    this.frames = [];
    // The stack: instances in order, each one's frames (at least one): quizzes.series_stack.
    for (const item of meta.instances) {
      const g = { ...meta.defaults, ...item };
      for (let f = 1; f <= Math.max(1, item.frames || 1); f += 1) this.frames.push({ uid: item.uid, frame: f, g });
    }
    if (this.picked && this.picked.series === series) {
      const f = this.frames[this.picked.index - 1];
      if (f) this.pick = { uid: f.uid, frame: f.frame, x: this.picked.x, y: this.picked.y };
      this.picked = null;
    }
    this.window = null;
    this.fillPresets();
    this.root.classList.add("viewer-ready");
    this.fit();
    if (this.notesUrl && !this.notesLoaded) {
      this.notesLoaded = true;
      this.loadNotes();
    }
    this.show(Math.min(index, this.frames.length - 1));
  }

  async loadNotes() {
    try {
      const response = await fetch(this.notesUrl, { credentials: "same-origin" });
      if (response.ok) this.notes = (await response.json()).items;
    } catch {
      this.notes = [];
    }
    this.drawOverlay();
  }

  viewport() {
    if (this.saveData) return VIEWPORT;
    const frame = this.frames[this.index];
    const scale = this.scale() * (window.devicePixelRatio || 1);
    return frame && frame.g.columns * scale > VIEWPORT * 1.25 ? VIEWPORT * 2 : VIEWPORT;
  }

  url(i) {
    const { uid, frame } = this.frames[i];
    const v = this.viewport();
    let query = `viewport=${v},${v}&quality=${QUALITY}`;
    if (this.window) query += `&window=${this.window[0]},${this.window[1]}`;
    if (this.invert) query += "&invert=1";
    return `${this.base}/studies/${this.study}/series/${this.series}/instances/${uid}/frames/${frame}/rendered?${query}`;
  }

  remember(url, src) {
    this.blobs.set(url, src);
    while (this.blobs.size > KEEP) {
      const [oldUrl, oldSrc] = this.blobs.entries().next().value;
      this.blobs.delete(oldUrl);
      if (oldSrc.startsWith("blob:") && oldSrc !== this.img.src) URL.revokeObjectURL(oldSrc);
    }
  }

  fetchFrame(url) {
    if (this.inflight.has(url)) return this.inflight.get(url).promise;
    const controller = new AbortController();
    const promise = fetch(url, { credentials: "same-origin", signal: controller.signal })
      .then((response) => {
        if (!response.ok) throw new Error(`The server answered ${response.status}.`);
        return response.blob();
      })
      .then((blob) => {
        this.remember(url, URL.createObjectURL(blob));
        return true;
      })
      .catch((err) => {
        // Remember failures so prefetch does not retry them in a tight loop (a dead
        // server or a refused frame would otherwise be asked for again at once).
        if (err.name !== "AbortError") this.failed.set(url, Date.now());
        throw err;
      })
      .finally(() => {
        this.inflight.delete(url);
        this.prefetch();
      });
    this.inflight.set(url, { controller, promise });
    return promise;
  }

  // ---- the stack ----------------------------------------------------------

  show(i) {
    if (!this.frames.length) return Promise.resolve();
    const index = Math.max(0, Math.min(this.frames.length - 1, i));
    if (index !== this.index) this.direction = index > this.index ? 1 : -1;
    this.index = index;
    this.counter.textContent = `${index + 1} / ${this.frames.length}`;
    this.windowLabel.textContent = this.window ? `W ${this.window[1]} L ${this.window[0]}` : "";
    this.drawOverlay();
    const url = this.url(index);
    this.current = url;
    const shown = () => {
      if (this.current !== url) return;
      const src = this.blobs.get(url);
      if (src && this.img.getAttribute("src") !== src) this.img.src = src;
      this.shownUrl = url;
      this.img.alt = `Frame ${index + 1} of ${this.frames.length}`;
      this.setState("ready");
    };
    if (this.blobs.has(url)) {
      shown();
      this.prefetch();
      return Promise.resolve();
    }
    this.setState("loading");
    const promise = this.fetchFrame(url).then(shown, (err) => {
      if (err.name !== "AbortError" && this.current === url) this.loading.textContent = err.message;
    });
    this.prefetch();
    return promise;
  }

  step(delta) {
    this.show(this.index + delta);
  }

  setState(state) {
    this.root.dataset.state = state;
    this.root.dataset.shownIndex = state === "ready" ? String(this.index) : "";
    this.loading.textContent = state === "loading" ? "Loading…" : "";
  }

  // The frames worth having now: the current one, then a few ahead in the reading
  // direction and fewer behind. Anything else in flight is aborted.
  prefetch() {
    if (!this.frames.length) return;
    const wanted = [this.current];
    if (!this.saveData && !this.dragging) {
      const ahead = this.cine ? CINE_AHEAD : AHEAD;
      for (let k = 1; k <= ahead; k += 1) {
        const i = this.index + k * this.direction;
        if (i >= 0 && i < this.frames.length) wanted.push(this.url(i));
        if (k <= BEHIND) {
          const j = this.index - k * this.direction;
          if (j >= 0 && j < this.frames.length) wanted.push(this.url(j));
        }
      }
    }
    const keep = new Set(wanted);
    for (const [url, job] of this.inflight) if (!keep.has(url)) job.controller.abort();
    if (!this.blobs.has(this.current)) return; // the current frame first, alone
    const now = Date.now();
    for (const url of wanted) {
      if (this.inflight.size >= PARALLEL) break;
      if (now - (this.failed.get(url) || 0) < RETRY_AFTER_MS) continue;
      if (!this.blobs.has(url) && !this.inflight.has(url)) this.fetchFrame(url).catch(() => {});
    }
  }

  // ---- display ------------------------------------------------------------

  scale() {
    const g = this.frames.length ? this.frames[this.index].g : null;
    if (!g) return 1;
    const fit = Math.min(this.stage.clientWidth / g.columns, this.stage.clientHeight / g.rows);
    return fit * this.zoom;
  }

  fit() {
    this.zoom = 1;
    this.panX = 0;
    this.panY = 0;
    this.place();
  }

  place() {
    if (!this.frames.length) return;
    const g = this.frames[this.index].g;
    const s = this.scale();
    const x = (this.stage.clientWidth - g.columns * s) / 2 + this.panX;
    const y = (this.stage.clientHeight - g.rows * s) / 2 + this.panY;
    this.layer.style.width = `${g.columns}px`;
    this.layer.style.height = `${g.rows}px`;
    this.layer.style.transform = `translate(${x}px, ${y}px) scale(${s})`;
    this.overlay.setAttribute("viewBox", `0 0 ${g.columns} ${g.rows}`);
    this.drawOverlay();
  }

  // Image pixel coordinates (column, row) of a pointer event (PS3.3 C.10.5.1.2).
  toImage(event) {
    const g = this.frames[this.index].g;
    const r = this.layer.getBoundingClientRect();
    return [((event.clientX - r.left) / r.width) * g.columns, ((event.clientY - r.top) / r.height) * g.rows];
  }

  // ---- pick mode ----------------------------------------------------------

  mark([x, y]) {
    const f = this.frames[this.index];
    if (!(x >= 0 && y >= 0 && x < f.g.columns && y < f.g.rows)) return; // off the image
    if (this.root.dataset.state !== "ready") {
      this.readout.textContent = "Wait for the image to load, then click.";
      return;
    }
    this.pick = { uid: f.uid, frame: f.frame, x: round2(x), y: round2(y) };
    this.readout.textContent = `Marked image ${this.index + 1} at (${Math.round(x)}, ${Math.round(y)}).`;
    this.drawOverlay();
    const detail = { series: this.series, index: this.index + 1, x: this.pick.x, y: this.pick.y };
    this.root.dispatchEvent(new CustomEvent("viewer:pick", { bubbles: true, detail }));
  }

  frameKey() {
    const f = this.frames[this.index];
    return `${f.uid}/${f.frame}`;
  }

  // ---- measurements -----------------------------------------------------

  length(a, b) {
    const g = this.frames[this.index].g;
    const dx = b[0] - a[0];
    const dy = b[1] - a[1];
    if (!g.spacing) return { text: `${round1(Math.hypot(dx, dy))} px`, note: g.spacing_note };
    // Pixel Spacing is (row spacing, column spacing): x steps use the column spacing.
    const mm = Math.hypot(dx * g.spacing[1], dy * g.spacing[0]);
    const note = g.spacing_source === "ImagerPixelSpacing" ? "Imager Pixel Spacing, at the detector" : "Pixel Spacing";
    return { text: `${round1(mm)} mm`, note };
  }

  addMeasure(measure) {
    const key = this.frameKey();
    if (!this.measures.has(key)) this.measures.set(key, []);
    this.measures.get(key).push(measure);
    this.drawOverlay();
  }

  async finishRoi(a, b) {
    const cx = (a[0] + b[0]) / 2;
    const cy = (a[1] + b[1]) / 2;
    const rx = Math.abs(b[0] - a[0]) / 2;
    const ry = Math.abs(b[1] - a[1]) / 2;
    if (rx < 0.5 || ry < 0.5) return;
    const { uid, frame } = this.frames[this.index];
    const measure = { kind: "ellipse", points: [a, b], label: "…" };
    this.addMeasure(measure);
    const url = `/api${this.base}/studies/${this.study}/series/${this.series}/instances/${uid}/frames/${frame}/roi`;
    try {
      const s = await sendJson("POST", url, { cx, cy, rx, ry });
      const units = s.units ? ` ${s.units}` : "";
      const area = s.area_mm2 === null ? `${s.pixel_count} px` : `${round1(s.area_mm2)} mm²`;
      measure.label = `mean ${round1(s.mean)}${units}, SD ${round1(s.sd)}`;
      this.readout.textContent = `Ellipse: area ${area}, mean ${round1(s.mean)}${units}, SD ${round1(s.sd)}${units}, min ${round1(s.min)}, max ${round1(s.max)} (${s.pixel_count} pixels)`;
    } catch (err) {
      measure.label = "";
      this.readout.textContent = `Ellipse: ${err.message}`;
    }
    this.drawOverlay();
  }

  // ---- annotations ------------------------------------------------------

  async saveNote(kind, points, text = "") {
    const { uid, frame } = this.frames[this.index];
    const teaching = Boolean(this.teachingBox && this.teachingBox.checked);
    const body = { instance: uid, frame, kind, points, text, teaching, visibility: this.visibilitySelect.value };
    try {
      const note = await sendJson("POST", this.notesUrl, body);
      this.notes.push(note);
      this.readout.textContent = `${KIND_NAMES[kind]} saved.`;
    } catch (err) {
      this.readout.textContent = `Not saved: ${err.message}`;
    }
    this.drawOverlay();
  }

  async deleteNote(note) {
    try {
      await sendJson("DELETE", `${this.notesUrl}/${note.id}`);
      this.notes = this.notes.filter((n) => n.id !== note.id);
    } catch (err) {
      this.readout.textContent = `Not deleted: ${err.message}`;
    }
    this.drawOverlay();
  }

  // ---- drawing ------------------------------------------------------------

  drawOverlay() {
    if (!this.frames.length) return;
    const s = this.scale();
    const px = 1 / s; // one CSS pixel in image pixels
    const layer = this.overlay;
    layer.replaceChildren();
    const f = this.frames[this.index];
    const draw = (kind, points, label, cls) => {
      const [a, b] = points;
      const group = shape("g", { class: cls });
      if (kind === "ellipse" && b) {
        group.append(shape("ellipse", {
          cx: (a[0] + b[0]) / 2, cy: (a[1] + b[1]) / 2, rx: Math.abs(b[0] - a[0]) / 2, ry: Math.abs(b[1] - a[1]) / 2,
        }));
      } else if (kind === "angle") {
        group.append(shape("polyline", { points: points.map((p) => p.join(",")).join(" ") }));
      } else if (b && kind !== "text") {
        group.append(shape("line", { x1: a[0], y1: a[1], x2: b[0], y2: b[1] }));
        if (kind === "arrow") {
          const angle = Math.atan2(b[1] - a[1], b[0] - a[0]);
          const head = 12 * px;
          const wing = (t) => `${b[0] - head * Math.cos(angle + t)},${b[1] - head * Math.sin(angle + t)}`;
          group.append(shape("polyline", { points: `${wing(0.45)} ${b[0]},${b[1]} ${wing(-0.45)}` }));
        }
      }
      if (label) {
        const anchor = kind === "text" ? a : points[points.length - 1];
        const t = shape("text", { x: anchor[0] + 4 * px, y: anchor[1] - 4 * px, "font-size": 14 * px });
        t.textContent = label;
        group.append(t);
      }
      layer.append(group);
    };
    for (const m of this.measures.get(this.frameKey()) || []) draw(m.kind, m.points, m.label, "measure");
    if (this.pick && this.pick.uid === f.uid && this.pick.frame === f.frame) {
      const { x, y } = this.pick;
      const r = 9 * px;
      const group = shape("g", { class: "pick", "data-x": x, "data-y": y });
      group.append(shape("circle", { cx: x, cy: y, r }),
        shape("line", { x1: x - 2 * r, y1: y, x2: x - r / 2, y2: y }), shape("line", { x1: x + r / 2, y1: y, x2: x + 2 * r, y2: y }),
        shape("line", { x1: x, y1: y - 2 * r, x2: x, y2: y - r / 2 }), shape("line", { x1: x, y1: y + r / 2, x2: x, y2: y + 2 * r }));
      layer.append(group);
    }
    const t = this.target;
    if (t && t.series === this.series && this.index + 1 >= t.frames[0] && this.index + 1 <= t.frames[1]) {
      const r = t.region;
      const group = shape("g", { class: "target", "data-target": "1" });
      if (r.shape === "polygon" && Array.isArray(r.points)) {
        group.append(shape("polygon", { points: r.points.map((p) => p.join(",")).join(" ") }));
      } else {
        group.append(shape("ellipse", { cx: r.cx, cy: r.cy, rx: r.rx, ry: r.ry }));
      }
      layer.append(group);
    }
    const here = this.notes.filter((n) => n.instance === f.uid && n.frame === f.frame && (!n.teaching || this.showTeaching));
    for (const n of here) draw(n.kind, n.points, n.kind === "text" ? n.text : "", n.teaching ? "note teaching" : "note");
    if (this.draft) draw(this.draft.kind, this.draft.points, this.draft.label, "draft");
    this.listNotes(here);
  }

  listNotes(here) {
    if (!this.notesList) return;
    this.notesList.replaceChildren();
    for (const n of here) {
      const shared = VISIBILITY.find(([v]) => v === n.visibility);
      const who = n.teaching ? "teaching overlay" : `${n.mine ? "you" : n.author}, ${shared ? shared[1].toLowerCase() : ""}`;
      const item = make("li", { dataset: { note: String(n.id) } },
        `${KIND_NAMES[n.kind] || n.kind}${n.kind === "text" ? ` “${n.text}”` : ""} — ${who}`);
      if (n.editable) {
        const remove = make("button", { type: "button", class: "link" }, "Delete");
        remove.addEventListener("click", () => this.deleteNote(n));
        item.append(" ", remove);
      }
      this.notesList.append(item);
    }
  }

  // ---- controls -----------------------------------------------------------

  buildToolbar() {
    const bar = this.root.querySelector(".viewer-toolbar");
    const tools = [
      ["scroll", "Scroll"], ["wl", "Window"], ["pan", "Pan"], ["zoom", "Zoom"],
      ["length", "Length"], ["angle", "Angle"], ["roi", "Ellipse ROI"],
    ];
    if (this.pickMode) tools.unshift(["pick", "Mark the abnormality"]);
    if (this.notesUrl && this.signedIn) tools.push(["arrow", "Arrow"], ["line", "Line"], ["ellipse", "Ellipse"], ["text", "Text"]);
    this.toolButtons = tools.map(([tool, label]) => {
      const button = make("button", { type: "button", class: "secondary", dataset: { tool }, "aria-pressed": String(tool === this.tool) }, label);
      button.addEventListener("click", () => this.setTool(tool));
      return button;
    });
    this.presetSelect = make("select", { "aria-label": "Window preset", class: "viewer-preset" });
    this.presetSelect.addEventListener("change", () => {
      const value = this.presetSelect.value;
      this.window = value ? value.split(",").map(Number) : null;
      this.show(this.index);
    });
    const action = (label, fn, cls = "secondary") => {
      const button = make("button", { type: "button", class: cls }, label);
      button.addEventListener("click", fn);
      return button;
    };
    this.invertButton = action("Invert", () => {
      this.invert = !this.invert;
      this.invertButton.setAttribute("aria-pressed", String(this.invert));
      this.show(this.index);
    });
    this.invertButton.setAttribute("aria-pressed", "false");
    this.fps = make("select", { "aria-label": "Frames per second" },
      ...[2, 5, 10, 15, 20].map((n) => make("option", { value: String(n) }, `${n} fps`)));
    this.fps.value = "10";
    this.fps.addEventListener("change", () => { if (this.cine) { this.stopCine(); this.startCine(); } });
    this.cineButton = action("Play", () => (this.cine ? this.stopCine() : this.startCine()));
    const groups = [
      make("span", { class: "viewer-group" }, ...this.toolButtons),
      make("span", { class: "viewer-group" }, this.presetSelect, this.invertButton),
      make("span", { class: "viewer-group" }, action("Fit", () => this.fit()),
        action("Reset", () => { this.window = null; this.invert = false; this.presetSelect.value = ""; this.invertButton.setAttribute("aria-pressed", "false"); this.measures.clear(); this.readout.textContent = ""; this.fit(); this.show(this.index); })),
      make("span", { class: "viewer-group" }, this.cineButton, this.fps),
    ];
    if (this.notesUrl) {
      // data-no-teaching: the notes come without the teaching overlay (an unknown before
      // its diagnosis), so there is nothing to toggle.
      const toggle = make("input", { type: "checkbox", checked: true });
      toggle.addEventListener("change", () => { this.showTeaching = toggle.checked; this.drawOverlay(); });
      const notes = make("span", { class: "viewer-group" });
      if (this.root.dataset.noTeaching !== "1") notes.append(make("label", {}, toggle, " Teaching overlay"));
      if (this.signedIn) {
        this.visibilitySelect = make("select", { "aria-label": "Who sees my annotations", class: "viewer-visibility" },
          ...VISIBILITY.map(([value, label]) => make("option", { value }, label)));
        notes.append(this.visibilitySelect);
        if (this.canTeach) {
          this.teachingBox = make("input", { type: "checkbox", class: "viewer-teaching" });
          notes.append(make("label", {}, this.teachingBox, " Add to teaching overlay"));
        }
      }
      groups.push(notes);
    }
    bar.replaceChildren(...groups);
  }

  fillPresets() {
    const g = this.meta.defaults;
    const options = [make("option", { value: "" }, g.window ? `Default (W ${round1(g.window[1])} L ${round1(g.window[0])})` : "Default")];
    for (const p of this.meta.presets) options.push(make("option", { value: `${p.centre},${p.width}` }, `${p.name} (W ${p.width} L ${p.centre})`));
    this.presetSelect.replaceChildren(...options);
    this.presetSelect.disabled = !g.greyscale;
  }

  setTool(tool) {
    this.tool = tool;
    this.draft = null;
    for (const b of this.toolButtons) b.setAttribute("aria-pressed", String(b.dataset.tool === tool));
    this.stage.dataset.tool = tool;
    this.drawOverlay();
  }

  startCine() {
    const fps = Number(this.fps.value) || 10;
    this.cineButton.textContent = "Stop";
    this.cine = setInterval(() => {
      if (this.shownUrl !== this.current) return; // wait for the frame, do not skip it
      this.show(this.index + 1 >= this.frames.length ? 0 : this.index + 1);
    }, 1000 / fps);
  }

  stopCine() {
    if (this.cine) clearInterval(this.cine);
    this.cine = null;
    if (this.cineButton) this.cineButton.textContent = "Play";
  }

  bind() {
    let wheel = 0;
    this.stage.addEventListener("wheel", (event) => {
      if (!this.frames.length) return;
      event.preventDefault();
      wheel += event.deltaMode === 1 ? event.deltaY * 40 : event.deltaY;
      while (Math.abs(wheel) >= 40) {
        const d = Math.sign(wheel);
        wheel -= d * 40;
        this.step(d);
      }
    }, { passive: false });
    this.root.addEventListener("keydown", (event) => {
      if (event.target instanceof HTMLSelectElement || event.target instanceof HTMLInputElement) return;
      const moves = { ArrowDown: 1, ArrowRight: 1, ArrowUp: -1, ArrowLeft: -1, PageDown: 10, PageUp: -10 };
      if (event.key in moves) this.step(moves[event.key]);
      else if (event.key === "Home") this.show(0);
      else if (event.key === "End") this.show(this.frames.length - 1);
      else if (event.key === "Escape") { this.draft = null; this.drawOverlay(); return; }
      else return;
      event.preventDefault();
    });
    for (const item of this.root.querySelectorAll(".viewer-series-item")) {
      item.addEventListener("click", () => { if (item.dataset.series !== this.series) this.load(item.dataset.series, 0); });
    }
    this.stage.addEventListener("pointerdown", (event) => this.down(event));
    this.stage.addEventListener("pointermove", (event) => this.move(event));
    this.stage.addEventListener("pointerup", (event) => this.up(event));
    this.stage.addEventListener("pointercancel", () => { this.drag = null; this.dragging = false; });
    new ResizeObserver(() => this.place()).observe(this.stage);
  }

  down(event) {
    if (!this.frames.length || event.button > 0) return;
    this.root.focus({ preventScroll: true });
    this.stage.setPointerCapture(event.pointerId);
    const p = this.toImage(event);
    const g = this.frames[this.index].g;
    this.drag = { x: event.clientX, y: event.clientY, p, moved: 0, zoom: this.zoom, panX: this.panX, panY: this.panY,
      window: this.window || g.window || [128, 256] };
    if (this.tool === "angle" && this.draft && this.draft.kind === "angle" && this.draft.points.length === 2) {
      this.draft.points.push(p);
      return;
    }
    if (["length", "roi", "arrow", "line", "ellipse", "angle"].includes(this.tool)) {
      const kind = { length: "line", roi: "ellipse" }[this.tool] || this.tool;
      this.draft = { kind, points: [p, p], label: "" };
    }
  }

  move(event) {
    const d = this.drag;
    if (!d) return;
    const dx = event.clientX - d.x;
    const dy = event.clientY - d.y;
    d.moved = Math.max(d.moved, Math.hypot(dx, dy));
    if (this.tool === "scroll" || this.tool === "pick") { // pick: a drag scrolls, a click marks
      const target = Math.trunc(dy / DRAG_STEP);
      if (target !== (d.steps || 0)) { this.step(target - (d.steps || 0)); d.steps = target; }
    } else if (this.tool === "pan") {
      this.panX = d.panX + dx; this.panY = d.panY + dy; this.place();
    } else if (this.tool === "zoom") {
      this.zoom = Math.min(20, Math.max(0.25, d.zoom * Math.exp(-dy / 150))); this.place();
    } else if (this.tool === "wl") {
      this.dragging = true;
      const [c0, w0] = d.window;
      const k = Math.max(1, w0 / 256);
      this.window = [Math.round(c0 + dy * k), Math.max(1, Math.round(w0 + dx * k))];
      this.windowLabel.textContent = `W ${this.window[1]} L ${this.window[0]}`;
      if (!this.wlBusy) {
        this.wlBusy = this.show(this.index).finally(() => {
          this.wlBusy = null;
          if (this.shownUrl !== this.url(this.index)) this.show(this.index);
        });
      }
    } else if (this.draft) {
      const p = this.toImage(event);
      const pts = this.draft.points;
      if (this.draft.kind === "angle" && pts.length === 3) pts[2] = p; else pts[1] = p;
      if (this.tool === "length") this.draft.label = this.length(pts[0], pts[1]).text;
      this.drawOverlay();
    }
  }

  up(event) {
    const d = this.drag;
    this.drag = null;
    if (!d) return;
    const wasDragging = this.dragging;
    this.dragging = false;
    if (wasDragging) this.prefetch();
    if (this.tool === "wl") { this.presetSelect.value = ""; return; }
    const p = this.toImage(event);
    if (this.tool === "pick") {
      if (d.moved < 3 && !d.steps) this.mark(p);
      return;
    }
    const draft = this.draft;
    if (this.tool === "text" && this.notesUrl) {
      const text = window.prompt("Text of the annotation");
      if (text && text.trim()) this.saveNote("text", [p], text.trim());
      return;
    }
    if (!draft) return;
    const [a] = draft.points;
    if (this.tool === "angle") {
      if (draft.points.length === 2) {
        draft.points[1] = p;
        if (d.moved < 3) this.draft = null;
        this.drawOverlay();
        return;
      }
      const [p0, vertex] = draft.points;
      draft.points[2] = p;
      const v1 = [p0[0] - vertex[0], p0[1] - vertex[1]];
      const v2 = [p[0] - vertex[0], p[1] - vertex[1]];
      const degrees = Math.abs((Math.atan2(v1[0] * v2[1] - v1[1] * v2[0], v1[0] * v2[0] + v1[1] * v2[1]) * 180) / Math.PI);
      this.draft = null;
      this.addMeasure({ kind: "angle", points: [p0, vertex, p], label: `${round1(degrees)}°` });
      this.readout.textContent = `Angle: ${round1(degrees)}°`;
      return;
    }
    this.draft = null;
    if (d.moved < 3) { this.drawOverlay(); return; }
    if (this.tool === "length") {
      const m = this.length(a, p);
      this.addMeasure({ kind: "line", points: [a, p], label: m.text });
      this.readout.textContent = `Length: ${m.text} (${m.note})`;
    } else if (this.tool === "roi") {
      this.finishRoi(a, p);
    } else if (["arrow", "line", "ellipse"].includes(this.tool)) {
      this.saveNote(this.tool, [a, p]);
    }
  }
}

for (const root of document.querySelectorAll(".viewer")) {
  if (!root.viewer) root.viewer = new Viewer(root);
}
