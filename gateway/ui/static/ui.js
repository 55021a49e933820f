// loragate dashboard: charts, confirmed actions, the live retrain panel.
"use strict";
const loragate = (() => {
  function toast(message, bad) {
    const box = document.getElementById("toast");
    box.textContent = message;
    box.className = "shown" + (bad ? " bad" : "");
    clearTimeout(box.hideTimer);
    box.hideTimer = setTimeout(() => { box.className = ""; }, 4000);
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body || {}), credentials: "same-origin",
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new Error((data.error && data.error.message) || `${response.status} ${response.statusText}`);
    }
    return data;
  }

  function drawCharts() {
    if (typeof Plotly === "undefined") return;
    for (const box of document.querySelectorAll("[data-figure]")) {
      const spec = JSON.parse(document.getElementById(box.dataset.figure).textContent);
      if (!spec.data.length) {
        box.innerHTML = '<p class="muted">No data yet.</p>';
        box.style.minHeight = "0";
        continue;
      }
      Plotly.newPlot(box, spec.data, spec.layout, { displaylogo: false, responsive: true });
      box.dataset.drawn = "yes";
    }
  }

  // Buttons with data-action post data-body (JSON) after the user confirms data-confirm.
  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    button.disabled = true;
    try {
      const data = await post(button.dataset.action, JSON.parse(button.dataset.body || "{}"));
      toast(data.message || (data.started ? "retrain started" : "a retrain is already running"));
      if (button.dataset.action.endsWith("/retrain")) { followRetrain(true); return; }
      setTimeout(() => window.location.reload(), 900);
    } catch (error) {
      toast(error.message, true);
      button.disabled = false;
    }
  });

  // While a retrain runs, its stages and progress bars come from its log, once a second.
  function followRetrain(started) {
    const panel = document.getElementById("retrain");
    if (!panel || (!started && panel.dataset.running !== "yes")) return;
    const log = document.getElementById("retrain-log");
    const line = document.getElementById("retrain-status");
    const button = document.getElementById("retrain-button");
    const tick = async () => {
      const response = await fetch("/ui/actions/retrain", { credentials: "same-origin" });
      if (!response.ok) return;
      const state = await response.json();
      log.hidden = !state.log.length;
      log.textContent = state.log.join("\n");
      log.scrollTop = log.scrollHeight;
      button.disabled = state.running;
      if (state.running) {
        line.textContent = "running (" + state.reason + ")";
        setTimeout(tick, 1000);
      } else {
        line.textContent = "finished with exit code " + state.returncode;
        panel.dataset.running = "no";
      }
    };
    tick();
  }

  return { toast, post, drawCharts, followRetrain };
})();
