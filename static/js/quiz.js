// Hotspot questions are answered in the image viewer (static/js/viewer.js in pick mode):
// its "Mark the abnormality" tool sends a `viewer:pick` event with the series, the image
// number in the series' stack (1-based) and the position in image pixels (column, row),
// whatever the zoom and pan; this fills the answer form with them.
// Learners never receive the region: the server marks the click.
const form = document.querySelector("[data-answer-form]");
const field = (name) => form.querySelector(`[data-answer-${name}]`);
if (form && field("frame")) {
  const status = form.querySelector("[data-click-status]");
  document.addEventListener("viewer:pick", (event) => {
    const { series, index, x, y } = event.detail;
    field("series").value = series;
    field("frame").value = String(index);
    field("x").value = String(x);
    field("y").value = String(y);
    if (status) status.textContent = `Your click: image ${index} at (${Math.round(x)}, ${Math.round(y)}). Save to answer.`;
  });
  form.addEventListener("submit", (event) => {
    if (!field("frame").value) {
      event.preventDefault();
      if (status) status.textContent = "Click on the abnormality in the image first.";
    }
  });
}
