// Autosave of the case editor: every few seconds, to the server only (narratives may
// hold patient data, so nothing is kept in the browser's storage). A save names the
// revision it started from; if someone else saved meanwhile the server refuses it,
// keeps this text as a revision, and autosave stops so nothing is overwritten.
const form = document.getElementById("case-editor");
const status = document.getElementById("autosave-status");
const token = document.querySelector('meta[name="csrf-token"]').content;
const INTERVAL_MS = 4000;
let dirty = false;
let saving = false;
let stopped = false;

function content() {
  const value = (name) => form.elements[name].value;
  const labels = {};
  for (const kind of ["modality", "body_region", "tag", "audience", "small_hospital_modality"]) {
    labels[kind] = value(`label_${kind}`).split(",").map((v) => v.trim()).filter(Boolean);
  }
  const sections = {};
  for (const element of form.elements) {
    if (element.name && element.name.startsWith("section_")) {
      sections[element.name.slice("section_".length)] = element.value;
    }
  }
  return {
    title: value("title"), diagnosis: value("diagnosis"), difficulty: value("difficulty"),
    certainty: value("certainty"), labels, sections,
  };
}

async function save() {
  if (!dirty || saving || stopped) return;
  saving = true;
  dirty = false;
  try {
    const response = await fetch(form.dataset.saveUrl, {
      method: "PUT",
      headers: { "Content-Type": "application/json", "X-CSRFToken": token, Accept: "application/json" },
      body: JSON.stringify({ base_revision: Number(form.elements.base_revision.value), content: content() }),
    });
    const body = await response.json();
    if (response.ok) {
      form.elements.base_revision.value = body.revision;
      const found = (body.findings || []).length;
      if (body.pending) {
        // A published case: readers keep the last confirmed text until the author confirms.
        status.textContent = `Saved (revision ${body.revision}), not shown to readers yet: ${found} passage(s) look like patient identifiers. Save now to review and confirm them.`;
      } else if (found) {
        status.textContent = `Saved (revision ${body.revision}); ${found} passage(s) look like patient identifiers.`;
      } else {
        status.textContent = `Saved (revision ${body.revision}) at ${new Date().toLocaleTimeString()}.`;
      }
    } else if (response.status === 409) {
      stopped = true;
      status.textContent = body.error;
      status.classList.add("error");
    } else {
      dirty = true;
      status.textContent = `Not saved: ${body.error}`;
    }
  } catch {
    dirty = true;
    status.textContent = "Offline: the text will be saved when the connection is back.";
  } finally {
    saving = false;
  }
}

form.addEventListener("input", () => {
  dirty = true;
  if (!stopped) status.textContent = "Unsaved changes…";
});
setInterval(save, INTERVAL_MS);
window.addEventListener("beforeunload", (event) => {
  if (dirty && !stopped) event.preventDefault();
});
