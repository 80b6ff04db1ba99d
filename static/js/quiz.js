// Hotspot questions: scroll through the series' stack (buttons, mouse wheel, arrow keys)
// and click the abnormality. The click is sent as the image number in the stack (1-based)
// and the position in image pixels (column, row), whatever size the image is shown at.
// Learners never receive the region: the server marks the click.
for (const box of document.querySelectorAll("[data-hotspot]")) {
  const img = box.querySelector("[data-stack-image]");
  const marker = box.querySelector("[data-marker]");
  const number = box.querySelector("[data-frame-number]");
  const frames = [...box.querySelectorAll(".hotspot-frames li")].map((li) => ({
    url: li.dataset.url,
    columns: Number(li.dataset.columns),
    rows: Number(li.dataset.rows),
  }));
  const form = document.querySelector("[data-answer-form]");
  const field = (name) => (form ? form.querySelector(`[data-answer-${name}]`) : null);
  const status = form ? form.querySelector("[data-click-status]") : null;
  let index = 0;
  let clicked = null;
  const previous = Number(field("frame")?.value || 0);
  if (previous >= 1 && previous <= frames.length) {
    index = previous - 1;
    clicked = { frame: previous, x: Number(field("x").value), y: Number(field("y").value) };
  }
  // Neighbouring images are fetched ahead so scrolling on a slow link does not stall.
  const cache = new Map();
  function preload(i) {
    if (i < 0 || i >= frames.length || cache.has(i)) return;
    const image = new Image();
    image.src = frames[i].url;
    cache.set(i, image);
  }
  function placeMarker() {
    const f = frames[index];
    if (!clicked || clicked.frame !== index + 1) {
      marker.hidden = true;
      return;
    }
    marker.hidden = false;
    marker.style.left = `${(100 * clicked.x) / f.columns}%`;
    marker.style.top = `${(100 * clicked.y) / f.rows}%`;
  }
  function show(i) {
    index = Math.max(0, Math.min(frames.length - 1, i));
    img.src = frames[index].url;
    img.alt = `Image ${index + 1} of the series`;
    number.textContent = String(index + 1);
    box.dataset.frame = String(index + 1);
    placeMarker();
    preload(index + 1);
    preload(index - 1);
  }
  for (const button of box.querySelectorAll("[data-step]")) {
    button.addEventListener("click", () => show(index + Number(button.dataset.step)));
  }
  img.addEventListener("wheel", (event) => {
    event.preventDefault();
    show(index + (event.deltaY > 0 ? 1 : -1));
  }, { passive: false });
  box.tabIndex = 0;
  box.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown" || event.key === "ArrowRight") show(index + 1);
    else if (event.key === "ArrowUp" || event.key === "ArrowLeft") show(index - 1);
    else return;
    event.preventDefault();
  });
  if (form) {
    img.classList.add("clickable");
    img.addEventListener("click", (event) => {
      const rect = img.getBoundingClientRect();
      const f = frames[index];
      const x = ((event.clientX - rect.left) / rect.width) * f.columns;
      const y = ((event.clientY - rect.top) / rect.height) * f.rows;
      clicked = { frame: index + 1, x: Math.round(x * 100) / 100, y: Math.round(y * 100) / 100 };
      field("frame").value = String(clicked.frame);
      field("x").value = String(clicked.x);
      field("y").value = String(clicked.y);
      if (status) {
        status.textContent = `Your click: image ${clicked.frame} at (${Math.round(x)}, ${Math.round(y)}). Save to answer.`;
      }
      placeMarker();
    });
    form.addEventListener("submit", (event) => {
      if (!field("frame").value) {
        event.preventDefault();
        if (status) status.textContent = "Click on the image first.";
      }
    });
  }
  show(index);
}
