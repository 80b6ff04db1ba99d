// Counts down a timed exam's "Time left" (issue 15). The server enforces the deadline; this
// only keeps the shown time current, and reloads at zero so the page shows the result.
const shown = document.querySelector("[data-seconds-left]");
if (shown) {
  const end = Date.now() + Number(shown.dataset.secondsLeft) * 1000;
  const tick = () => {
    const left = Math.max(0, Math.round((end - Date.now()) / 1000));
    shown.textContent = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
    if (left === 0) {
      window.location.reload();
      return;
    }
    window.setTimeout(tick, 1000);
  };
  tick();
}
