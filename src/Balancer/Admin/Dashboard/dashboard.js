// The admin dashboard: polls /api/stats each second, follows /events, and drains, reweights or removes backends.
// No framework and nothing from the network but this balancer's own admin API.
"use strict";

const state = { token: sessionStorage.getItem("balancer-token") || "", previous: null, backends: new Map(), eventsOpen: false, lastEventId: 0, polling: false };
const $ = (selector) => document.querySelector(selector);

function headers(json) {
  const h = {};
  if (state.token) h["Authorization"] = "Bearer " + state.token;
  if (json) h["Content-Type"] = "application/json";
  return h;
}

async function api(method, path, body) {
  const response = await fetch(path, { method, headers: headers(body !== undefined), body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 401) {
    $("#token-form").hidden = false;
    throw new Error("this admin API needs its token: enter it above");
  }
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail || detail; } catch { /* not JSON */ }
    throw new Error(`${method} ${path}: ${response.status} ${detail}`);
  }
  return response.status === 204 ? null : response.json();
}

// What went wrong, kept apart: a failed poll clears itself on the next good one; a refused action stays until the next action.
const errors = { poll: null, action: null };

function showError(kind, error) {
  errors[kind] = error ? String(error.message || error) : null;
  const box = $("#error");
  box.textContent = [errors.action, errors.poll].filter((e) => e).join(" · ");
  box.hidden = !box.textContent;
}

// A quantile from counts per duration bucket (upper bounds in ms; null is beyond the last).
function quantile(counts, bounds, q) {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    seen += counts[i];
    if (seen >= q * total) return bounds[i] === null ? bounds[i - 1] : bounds[i];
  }
  return bounds[bounds.length - 2];
}

function ms(value) {
  if (value === null || value === undefined) return "–";
  return value < 1 ? value.toFixed(2) + " ms" : value < 100 ? value.toFixed(1) + " ms" : Math.round(value) + " ms";
}

function stateOf(b) {
  if (b.state === "draining") return "draining";
  if (b.state === "ejected") return "ejected";
  if (b.state === "unhealthy") return "down";
  return b.state === "healthy" ? "healthy" : "unknown";
}

function render(stats) {
  const now = performance.now();
  const previous = state.previous;
  if (previous && stats.uptimeSeconds < previous.stats.uptimeSeconds) state.lastEventId = 0; // a new process numbers its events from 1
  const elapsed = previous ? (now - previous.at) / 1000 : 0;
  const before = new Map(previous ? previous.stats.backends.map((b) => [b.url, b]) : []);
  const rate = previous && elapsed > 0 ? (stats.totalRequests - previous.stats.totalRequests) / elapsed : 0;
  $("#summary").textContent = `${stats.totalRequests} requests · ${rate.toFixed(1)} req/s · up ${stats.uptime} · default algorithm ${stats.method}`;

  const pools = $("#pools");
  for (const pool of stats.pools) {
    let section = pools.querySelector(`.pool[data-pool="${CSS.escape(pool.name)}"]`);
    if (!section) {
      section = $("#pool-template").content.firstElementChild.cloneNode(true);
      section.dataset.pool = pool.name;
      section.querySelector(".pool-name").textContent = pool.name;
      section.querySelector(".pool-algorithm").textContent = pool.algorithm + (pool.paths.length ? " · " + pool.paths.join(", ") : "");
      pools.appendChild(section);
    }
    const body = section.querySelector("tbody");
    const rows = stats.backends.filter((b) => b.pool.toLowerCase() === pool.name.toLowerCase());
    const seen = new Set();
    for (const b of rows) {
      seen.add(b.url);
      let row = body.querySelector(`tr[data-backend="${CSS.escape(b.url)}"]`);
      if (!row) {
        row = document.createElement("tr");
        row.dataset.backend = b.url;
        row.innerHTML = `<td class="url"></td><td class="state"></td><td class="num weight"></td><td class="num effective"></td><td class="num inflight"></td>`
          + `<td class="num rps"></td><td class="num errors"></td><td class="num p50"></td><td class="num p99"></td>`
          + `<td class="actions"><input type="number" min="0" max="1000" aria-label="weight"><button data-act="weight">set</button> <button data-act="drain">drain</button> <button data-act="remove">remove</button></td>`;
        row.querySelector(".url").textContent = b.url;
        row.querySelector("input").value = b.weight;
        body.appendChild(row);
      }
      const old = before.get(b.url);
      const requests = old ? b.requestCount - old.requestCount : 0;
      const errors = old ? b.errorCount - old.errorCount : 0;
      const window = old ? b.durations.map((c, i) => c - old.durations[i]) : b.durations;
      const s = state.backends.get(b.url)?.forced || stateOf(b);
      row.className = s;
      row.querySelector(".state").innerHTML = "";
      row.querySelector(".state").append(s, Object.assign(document.createElement("small"), { textContent: b.reason || "" }));
      row.querySelector(".weight").textContent = b.weight;
      row.querySelector(".effective").textContent = b.effectiveWeight.toFixed(2);
      row.querySelector(".inflight").textContent = b.inFlight;
      row.querySelector(".rps").textContent = elapsed > 0 ? (requests / elapsed).toFixed(1) : "–";
      row.querySelector(".errors").textContent = requests > 0 ? ((100 * errors) / requests).toFixed(1) + "%" : "–";
      row.querySelector(".p50").textContent = ms(quantile(window, stats.durationBucketsMs, 0.5));
      row.querySelector(".p99").textContent = ms(quantile(window, stats.durationBucketsMs, 0.99));
      state.backends.set(b.url, { forced: null });
    }
    for (const row of [...body.children]) {
      if (!seen.has(row.dataset.backend)) row.remove();
    }
  }
  state.previous = { at: now, stats };
}

async function poll() {
  if (state.polling) return; // the last one is still waiting for its answer
  state.polling = true;
  try {
    render(await api("GET", "/api/stats"));
    showError("poll", null);
    if (!state.eventsOpen) followEvents();
  } catch (error) {
    showError("poll", error);
  } finally {
    state.polling = false;
  }
}

// Server-Sent Events through fetch, so that the token can go in a header (EventSource cannot send one).
async function followEvents() {
  state.eventsOpen = true;
  try {
    // After a reconnect, only what came since the last event seen (a restarted balancer numbers from 1 again).
    const response = await fetch(`/events?since=${state.lastEventId}`, { headers: headers(false) });
    if (!response.ok) throw new Error(`GET /events: ${response.status}`);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
        if (data.startsWith("{")) onEvent(JSON.parse(data));
      }
    }
  } catch (error) {
    showError("poll", error);
  }
  state.eventsOpen = false;
}

const bad = new Set(["down", "ejected", "removed", "drain-start"]);
const good = new Set(["up", "returned", "registered", "slow-start-end", "drain-end"]);

function onEvent(e) {
  if (e.id <= state.lastEventId) return;
  state.lastEventId = e.id;
  const item = document.createElement("li");
  item.className = bad.has(e.kind) ? "bad" : good.has(e.kind) ? "good" : "";
  item.dataset.kind = e.kind;
  const time = document.createElement("time");
  time.dateTime = e.time;
  time.textContent = new Date(e.time).toLocaleTimeString();
  const kind = Object.assign(document.createElement("span"), { className: "kind", textContent: e.kind });
  item.append(time, kind, ` ${e.backend} (${e.pool}): ${e.reason}`);
  const list = $("#events");
  list.prepend(item);
  while (list.children.length > 200) list.lastElementChild.remove();
  // A health change shows at once, not at the next poll.
  const row = document.querySelector(`tr[data-backend="${CSS.escape(e.backend)}"]`);
  if (row && (e.kind === "down" || e.kind === "ejected")) {
    row.className = e.kind === "down" ? "down" : "ejected";
    row.querySelector(".state").firstChild.textContent = row.className;
    state.backends.set(e.backend, { forced: row.className });
  }
}

document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-act]");
  if (!button) return;
  const row = button.closest("tr");
  const address = encodeURIComponent(row.dataset.backend);
  showError("action", null);
  try {
    if (button.dataset.act === "drain") await api("POST", `/backends/${address}/drain`);
    if (button.dataset.act === "remove" && confirm(`Remove ${row.dataset.backend}?`)) await api("DELETE", `/backends/${address}`);
    if (button.dataset.act === "weight") await api("PUT", `/backends/${address}`, { weight: Number(row.querySelector("input").value) });
    await poll();
  } catch (error) {
    showError("action", error);
  }
});

$("#token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  state.token = $("#token").value;
  sessionStorage.setItem("balancer-token", state.token);
  $("#token-form").hidden = true;
  poll();
});

poll();
setInterval(poll, 1000);
