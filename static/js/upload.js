// Upload with a progress bar: XMLHttpRequest reports upload progress, fetch does not.
// Without JavaScript the form posts normally and the server renders the result page.
const form = document.getElementById("upload-form");
const progress = document.getElementById("upload-progress");
const status = document.getElementById("upload-status");
const result = document.getElementById("upload-result");

// Files are named by position ("file 3", "entry 12"): a name may carry a patient's name.
function showResult(body) {
  document.getElementById("upload-summary").textContent = body.summary;
  const notes = document.getElementById("upload-notes");
  notes.replaceChildren();
  for (const note of body.notes) {
    const p = document.createElement("p");
    p.className = "flash flash-error";
    p.textContent = note;
    notes.append(p);
  }
  const rows = result.querySelector("tbody");
  rows.replaceChildren();
  for (const file of body.files) {
    const tr = document.createElement("tr");
    tr.className = `outcome-${file.outcome}`;
    for (const text of [file.item, file.outcome, file.reason]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    rows.append(tr);
  }
  result.hidden = false;
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const data = new FormData(form);
  const xhr = new XMLHttpRequest();
  xhr.open("POST", form.dataset.uploadUrl);
  xhr.setRequestHeader("Accept", "application/json");
  xhr.upload.addEventListener("progress", (e) => {
    if (e.lengthComputable) {
      progress.value = Math.round((100 * e.loaded) / e.total);
      status.textContent = `Sending… ${progress.value}%`;
    }
  });
  xhr.upload.addEventListener("load", () => {
    status.textContent = "De-identifying and storing…";
  });
  xhr.addEventListener("load", () => {
    progress.hidden = true;
    result.hidden = true;
    let body;
    try {
      body = JSON.parse(xhr.responseText);
    } catch {
      // A body past the size cap is refused before the upload view runs (an HTML page).
      status.textContent =
        xhr.status === 413
          ? "The upload is larger than this server accepts. Send it in several parts."
          : `The server answered ${xhr.status}; try again.`;
      return;
    }
    // 422/413/415 with a report: nothing was stored, and the table says why per file.
    status.textContent = xhr.status >= 400 ? body.error : "Done.";
    if (body.files) {
      showResult(body);
    }
  });
  xhr.addEventListener("error", () => {
    status.textContent = "The connection dropped. Send the files again: only what is missing will be added.";
  });
  progress.hidden = false;
  progress.value = 0;
  xhr.send(data);
});
