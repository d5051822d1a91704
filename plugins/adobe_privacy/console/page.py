"""The console page: one self-contained HTML document (no build step, no external assets).

It calls the console API with the browser's Airflow session cookie; keys, hashes and counts only.
"""

PAGE_HTML = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Privacy requests</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 1.2em 1.6em; color: #1a202c; }
  h1 { font-size: 1.4em; margin: 0 0 .6em; } h2 { font-size: 1.15em; margin: 1.4em 0 .5em; }
  table { border-collapse: collapse; margin: .4em 0; } td, th { border: 1px solid #cbd5e0; padding: .25em .6em; text-align: left; }
  th { background: #edf2f7; } .overdue { color: #c53030; font-weight: 600; } .muted { color: #718096; }
  input, select, button { font-size: 1em; padding: .3em .5em; } .row { display: flex; gap: .6em; align-items: center; flex-wrap: wrap; }
  #trail dl { display: grid; grid-template-columns: max-content auto; gap: .2em 1em; } #trail dt { font-weight: 600; }
  .error { color: #c53030; } a { color: #2b6cb0; }
</style>
</head>
<body>
<h1>Privacy requests</h1>
<section>
  <form id="search-form" class="row">
    <label for="search">Request key</label>
    <input id="search" name="search" placeholder="key or key prefix" autocomplete="off" size="40">
    <button type="submit" id="search-button">Search</button>
  </form>
  <div id="results"></div>
  <div id="trail"></div>
</section>
<section>
  <h2>Open requests by days to deadline</h2>
  <div class="row">
    <label>Regulation <input id="f-regulation" size="12"></label>
    <label>Action <select id="f-action"><option value="">any</option><option>access</option><option>delete</option></select></label>
    <label>Status <select id="f-status"><option value="">any open</option><option>received</option><option>postponed</option>
      <option>submitted</option><option>processing</option><option>error</option><option>archiving</option></select></label>
    <button id="f-apply" type="button">Apply</button>
  </div>
  <div id="board"></div>
</section>
<script>
"use strict";
const API = new URL("api/v1/", document.baseURI.endsWith("/") ? document.baseURI : document.baseURI + "/");
const BUCKETS = ["overdue", "0-7 days", "8-14 days", "15-30 days", "31+ days", "no due date"];
const COLORS = {received: "#a0aec0", postponed: "#d69e2e", submitted: "#4299e1", processing: "#3182ce",
                error: "#e53e3e", archiving: "#805ad5"};

function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
}
function gridLink(run) {
  // The console is embedded in Airflow's UI: open the run's grid in the whole window, not the frame.
  return `<a target="_top" href="${esc(new URL(".." + run.grid_url, document.baseURI).pathname)}">${esc(run.run_id)}</a>`;
}
async function getJson(path) {
  const response = await fetch(new URL(path, API), {credentials: "same-origin"});
  if (!response.ok) {
    const error = new Error(response.status === 404 ? "not found" : `HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return response.json();
}

async function search(text) {
  const results = document.getElementById("results");
  document.getElementById("trail").innerHTML = "";
  if (!text) { results.innerHTML = ""; return; }
  try {
    const exact = await getJson(`requests/${encodeURIComponent(text)}`);
    results.innerHTML = "";
    showTrail(exact);
    return;
  } catch (error) { if (error.status !== 404) { results.innerHTML = `<p class="error">${esc(error.message)}</p>`; return; } }
  const found = await getJson(`requests?prefix=${encodeURIComponent(text)}&limit=50`);
  if (!found.items.length) { results.innerHTML = `<p id="no-match">No request key starts with “${esc(text)}”.</p>`; return; }
  results.innerHTML = `<p>${found.total} request(s) match; the first ${found.items.length}:</p>` + table(found.items);
}

function table(items) {
  const rows = items.map(i => `<tr><td><a href="#" data-key="${esc(i.request_id)}">${esc(i.request_id)}</a></td>
    <td>${esc(i.regulation)}</td><td>${esc((i.actions || []).join(", "))}</td><td>${esc(i.status)}</td>
    <td>${esc(i.due_date)}</td><td class="${i.days_left < 0 ? "overdue" : ""}">${i.days_left ?? ""}</td></tr>`).join("");
  return `<table class="requests"><tr><th>request key</th><th>regulation</th><th>actions</th><th>status</th>
    <th>due date</th><th>days left</th></tr>${rows}</table>`;
}

function showTrail(r) {
  const d = r.processing_details;
  const jobs = d.jobs.map(j => `<tr><td>${esc(j.job_id)}</td><td>${esc(j.action)}</td><td>${esc(j.status)}</td>
    <td>${esc(j.attempt)}${j.current ? "" : " (replaced)"}</td><td>${esc(j.batch_id)}</td>
    <td>${j.products.map(p => `${esc(p.product)}: ${esc(p.code || p.status)}`).join("<br>")}</td></tr>`).join("");
  const evidence = r.evidence.map(e => `<li>${esc(e.kind)}${e.job_id ? " of " + esc(e.job_id) : ""}:
    <a class="evidence" href="${esc(e.uri)}" title="copy this address: objects are read with S3 credentials">${esc(e.uri)}</a>${e.sha256 ? ` <span class="muted">sha256 ${esc(e.sha256)}</span>` : ""}</li>`).join("");
  const runs = r.runs.map(run => `<li>${esc(run.dag_id)} ${gridLink(run)}${run.dag_version ? ` <span class="muted">version ${esc(run.dag_version)}</span>` : ""}</li>`).join("");
  const list = (items, fmt) => items.length ? `<ul>${items.map(fmt).join("")}</ul>` : "none";
  document.getElementById("trail").innerHTML = `<h2>Request ${esc(r.request_id)}</h2><dl>
    <dt>Status</dt><dd id="trail-status">${esc(d.status)} <span class="muted">(${esc(r.status)})</span></dd>
    <dt>Reason</dt><dd>${esc(r.reason)}</dd>
    <dt>Regulation</dt><dd>${esc(d.regulation)}</dd><dt>Actions</dt><dd>${esc((d.actions || []).join(", "))}</dd>
    <dt>Received</dt><dd>${esc(r.received_at)}</dd><dt>Due date</dt><dd id="trail-due">${esc(r.expected_by)}</dd>
    <dt>Closed</dt><dd>${esc(d.closed_at || "open")}</dd>
    <dt>Source</dt><dd>${list(d.sources, s => `<li>${esc(s.name)} rows ${esc(s.rows.join(", "))} <span class="muted">sha256 ${esc(s.sha256)}</span></li>`)}</dd>
    <dt>Batches</dt><dd>${list(d.batches, b => `<li>${esc(b.batch_id)} ${esc(b.state)} posted ${esc(b.posted_at)}</li>`)}</dd>
    <dt>Postponements</dt><dd>${list(d.postponements, p => `<li>${esc(p.at)}: ${esc(p.reason)}</li>`)}</dd>
    <dt>Resubmissions</dt><dd>${list(d.resubmissions, p => `<li>${esc(p.job_id)} → ${esc(p.retry_batch_id)}</li>`)}</dd>
    <dt>Products</dt><dd id="trail-products">${esc(d.products.join(", "))}</dd></dl>
    <h3>Jobs</h3><table id="trail-jobs"><tr><th>job id</th><th>action</th><th>status</th><th>attempt</th><th>batch</th>
    <th>product outcomes</th></tr>${jobs}</table>
    <h3>Evidence</h3><ul id="trail-evidence">${evidence || "<li>none yet</li>"}</ul>
    <h3>Runs</h3><ul id="trail-runs">${runs}</ul>`;
}

function chart(byBucket) {
  const statuses = [...new Set(Object.values(byBucket).flatMap(Object.keys))].sort();
  const totals = BUCKETS.map(b => Object.values(byBucket[b] || {}).reduce((a, n) => a + n, 0));
  const max = Math.max(...totals), width = 640, height = 220, bar = 80, gap = 24, top = 20;
  let svg = `<svg id="board-chart" role="img" aria-label="open requests by days to deadline" width="${width}" height="${height + 60}">`;
  BUCKETS.forEach((bucket, i) => {
    let y = top + height;
    const x = 40 + i * (bar + gap);
    for (const status of statuses) {
      const n = (byBucket[bucket] || {})[status] || 0;
      const h = max ? n / max * height : 0;
      y -= h;
      if (n) svg += `<rect x="${x}" y="${y}" width="${bar}" height="${h}" fill="${COLORS[status] || "#718096"}"><title>${esc(status)}: ${n}</title></rect>`;
    }
    svg += `<text x="${x + bar / 2}" y="${top + height + 16}" text-anchor="middle" font-size="12">${esc(bucket)}</text>`;
    svg += `<text x="${x + bar / 2}" y="${y - 4}" text-anchor="middle" font-size="12">${totals[i] || ""}</text>`;
  });
  const legend = statuses.map((s, i) => `<rect x="${40 + i * 110}" y="${top + height + 30}" width="10" height="10" fill="${COLORS[s] || "#718096"}"/>
    <text x="${54 + i * 110}" y="${top + height + 39}" font-size="12">${esc(s)}</text>`).join("");
  return svg + legend + "</svg>";
}

async function loadBoard() {
  const params = new URLSearchParams();
  for (const name of ["regulation", "action", "status"]) {
    const value = document.getElementById(`f-${name}`).value.trim();
    if (value) params.set(name, value);
  }
  const board = document.getElementById("board");
  try {
    const data = await getJson(`board?${params}`);
    if (!data.open) { board.innerHTML = `<p id="board-empty">Nothing is open (as of ${esc(data.as_of)}).</p>`; return; }
    board.innerHTML = `<p id="board-summary">${data.open} open request(s) as of ${esc(data.as_of)}; most urgent first.</p>`
      + chart(data.by_bucket) + `<div id="board-table">${table(data.items)}</div>`
      + (data.items.length < data.open ? `<p class="muted">showing the first ${data.items.length}</p>` : "");
  } catch (error) { board.innerHTML = `<p class="error">${esc(error.message)}</p>`; }
}

document.getElementById("search-form").addEventListener("submit", event => {
  event.preventDefault();
  search(document.getElementById("search").value.trim());
});
document.getElementById("f-apply").addEventListener("click", loadBoard);
document.addEventListener("click", event => {
  const link = event.target.closest("a[data-key]");
  if (!link) return;
  event.preventDefault();
  document.getElementById("search").value = link.dataset.key;
  search(link.dataset.key);
});
loadBoard();
</script>
</body>
</html>
"""
