// Loads the viewer only after the first frame (already in the HTML) has arrived, so on a
// slow link the script does not compete with the image the reader is waiting for.
const roots = document.querySelectorAll(".viewer");
const firsts = [...roots].map((root) => root.querySelector(".viewer-image")).filter(Boolean);
Promise.all(firsts.map((img) => (img.complete ? null : new Promise((done) => {
  img.addEventListener("load", done, { once: true });
  img.addEventListener("error", done, { once: true });
})))).then(() => import("./viewer.js"));
