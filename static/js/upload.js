// Upload with a progress bar: XMLHttpRequest reports upload progress, fetch does not.
// Without JavaScript the form posts normally and the server renders the result page.
const form = document.getElementById("upload-form");
const progress = document.getElementById("upload-progress");
const status = document.getElementById("upload-status");
const result = document.getElementById("upload-result");

function showResult(body) {
  const c = body.counts;
  document.getElementById("upload-summary").textContent =
    `${c.stored} stored, ${c.duplicate} already here, ${c.quarantined} held for review, ` +
    `${c.refused} refused, ${c.skipped} skipped; ${body.studies} studies.`;
  const rows = result.querySelector("tbody");
  rows.replaceChildren();
  for (const file of body.files) {
    const tr = document.createElement("tr");
    tr.className = `outcome-${file.outcome}`;
    for (const text of [file.name, file.outcome, file.reason]) {
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
    let body;
    try {
      body = JSON.parse(xhr.responseText);
    } catch {
      status.textContent = `The server answered ${xhr.status}; try again.`;
      return;
    }
    if (xhr.status >= 400) {
      status.textContent = body.error;
      return;
    }
    status.textContent = "Done.";
    showResult(body);
  });
  xhr.addEventListener("error", () => {
    status.textContent = "The connection dropped. Send the files again: only what is missing will be added.";
  });
  progress.hidden = false;
  progress.value = 0;
  xhr.send(data);
});
