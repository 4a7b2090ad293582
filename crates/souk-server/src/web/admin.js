// The admin console: data statistics with events over time, jobs with live progress and
// their history (start a training from here), the serving model generation, experiments
// and their reports with interval charts. Charts are inline SVG drawn here.

import { api, h, fill, formatNumber, keyForm, onKeyNeeded, hue } from "/web/common.js";

const SERIES_COLORS = {
  view: "#a8a29e", click: "#0ea5e9", add_to_cart: "#f59e0b", purchase: "#15803d", search: "#8b5cf6",
  impression: "#d6d3d1", favorite: "#ec4899", rating: "#14b8a6", review: "#6366f1", dislike: "#b91c1c",
  remove_from_cart: "#78716c",
};
const color = (name) => SERIES_COLORS[name] || `hsl(${hue(name)},60%,45%)`;
const when = (ms) => (ms ? new Date(ms).toLocaleString() : "–");
const seconds = (a, b) => (a && b ? `${((b - a) / 1000).toFixed(1)} s` : "");

function showError(slot, error) {
  fill(slot, h("p", { class: "error" }, error.message));
}

// ---------------------------------------------------------------- stats

async function loadStats() {
  const [stats, health] = await Promise.all([api("/v1/stats"), api("/health")]);
  fill(document.getElementById("health"), `${health.status} · v${health.version}${health.writes_refused ? ` · ${health.writes_refused}` : ""}`);
  const cards = [
    ["items", stats.catalog_items, "catalog items"], ["users", stats.users, "shoppers"], ["events", stats.events, "events"],
    ["social_edges", stats.social_edges, "social edges"], ["items_without_record", stats.items_without_record, "items without a record"],
  ];
  fill(document.getElementById("stats"), cards.map(([key, value, label]) =>
    h("div", { class: "stat", dataset: { stat: key } }, h("b", {}, formatNumber(value)), h("span", {}, label))));
  const types = Object.entries(stats.events_by_type).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
  const most = Math.max(1, ...types.map(([, n]) => n));
  fill(document.getElementById("event-types"), h("table", { class: "data" },
    h("tbody", {}, types.map(([type, n]) => h("tr", {},
      h("td", {}, h("i", { style: `display:inline-block;width:.7rem;height:.7rem;border-radius:2px;margin-right:.4rem;background:${color(type)}` }), type),
      h("td", { class: "num" }, formatNumber(n)),
      h("td", { style: "width:50%" }, h("div", { class: "bar" }, h("div", { style: `width:${(100 * n / most).toFixed(1)}%;background:${color(type)}` }))))))));
}

// ---------------------------------------------------------------- events over time

function niceMax(value) {
  if (value <= 0) return 1;
  const step = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 2.5, 5, 10].map((m) => m * step).find((m) => m >= value);
}

/** A line chart of `series` ({name: [counts]}), buckets from `start` every `bucket` ms. */
function lineChart(series, start, bucket) {
  const W = 860, H = 240, L = 48, R = 12, T = 10, B = 28;
  const names = Object.keys(series).sort((a, b) => series[b].reduce((x, y) => x + y, 0) - series[a].reduce((x, y) => x + y, 0));
  const n = Math.max(1, ...names.map((k) => series[k].length));
  const top = niceMax(Math.max(1, ...names.flatMap((k) => series[k])));
  const x = (i) => L + (n === 1 ? 0 : (i * (W - L - R)) / (n - 1));
  const y = (v) => T + (H - T - B) * (1 - v / top);
  const grid = [0, 0.25, 0.5, 0.75, 1].map((f) => h("g", {},
    h("line", { x1: L, x2: W - R, y1: y(top * f), y2: y(top * f), stroke: "#e7e5e4" }),
    h("text", { x: L - 6, y: y(top * f) + 4, "text-anchor": "end" }, formatNumber(Math.round(top * f)))));
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => Math.round(f * (n - 1))).filter((v, i, a) => a.indexOf(v) === i).map((i) => {
    const date = new Date(start + i * bucket);
    const label = bucket >= 86_400_000 ? date.toLocaleDateString() : date.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
    return h("text", { x: x(i), y: H - 8, "text-anchor": i === 0 ? "start" : i === n - 1 ? "end" : "middle" }, label);
  });
  const lines = names.map((name) => h("polyline", {
    fill: "none", stroke: color(name), "stroke-width": 2, "stroke-linejoin": "round", dataset: { series: name },
    points: series[name].map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" "),
  }, h("title", {}, name)));
  return h("svg", { class: "chart", id: "activity-chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "events over time" }, grid, ticks, lines);
}

async function loadActivity() {
  const activity = await api("/v1/stats/activity?buckets=60");
  const names = Object.keys(activity.series);
  fill(document.getElementById("activity-legend"), names.map((name) => h("span", {}, h("i", { style: `background:${color(name)}` }), name)));
  const days = activity.bucket_ms / 86_400_000;
  const per = days >= 1 ? (days === 1 ? "day" : `${days} days`) : activity.bucket_ms >= 3_600_000 ? `${activity.bucket_ms / 3_600_000} h` : `${activity.bucket_ms / 60_000} min`;
  fill(document.getElementById("activity"), names.length
    ? [lineChart(activity.series, activity.start, activity.bucket_ms), h("p", { class: "legend" }, `events per ${per}`)]
    : h("p", { class: "note" }, "No events yet."));
}

// ---------------------------------------------------------------- jobs

let jobsTimer = null;

async function loadJobs() {
  clearTimeout(jobsTimer);
  let active = false;
  try {
    const { jobs } = await api("/v1/jobs");
    active = jobs.some((j) => j.state === "queued" || j.state === "running");
    document.getElementById("train").disabled = jobs.some((j) => j.kind === "train" && (j.state === "queued" || j.state === "running"));
    const served = jobs.find((j) => j.kind === "train" && j.state === "done");
    fill(document.getElementById("model"), served
      ? `Serving since ${when(served.finished_at)} — ${served.message}`
      : "No training has finished since this server started (job history is kept in memory, the last 100 jobs).");
    fill(document.getElementById("jobs"), jobs.length
      ? h("table", { class: "data", id: "jobs-table" },
        h("thead", {}, h("tr", {}, ["Job", "Kind", "State", "Progress", "Started", "Took", "Message"].map((c) => h("th", {}, c)))),
        h("tbody", {}, jobs.map((j) => h("tr", { dataset: { job: j.id, state: j.state, progress: j.progress } },
          h("td", {}, j.id), h("td", {}, j.kind), h("td", { class: `state-${j.state}` }, j.state),
          h("td", {}, h("div", { class: "progress" }, h("div", { class: "bar" }, h("div", { style: `width:${(j.progress * 100).toFixed(1)}%` })), h("span", {}, `${Math.round(j.progress * 100)}%`))),
          h("td", {}, when(j.started_at)), h("td", {}, seconds(j.started_at, j.finished_at)), h("td", {}, j.message)))))
      : h("p", { class: "note", id: "no-jobs" }, "No jobs yet. Start a training to see its progress here."));
  } catch (error) {
    showError(document.getElementById("jobs"), error);
  }
  jobsTimer = setTimeout(loadJobs, active ? 500 : 5000);
}

async function train() {
  const button = document.getElementById("train");
  button.disabled = true;
  try {
    await api("/v1/train?wait=false", { method: "POST", body: {} });
  } catch (error) {
    showError(document.getElementById("model"), error);
  }
  loadJobs();
}

// ---------------------------------------------------------------- experiments

/** Lift intervals of the comparisons, one row each, around a zero line. */
function intervalChart(comparisons) {
  const W = 560, rowH = 26, L = 200, R = 20, T = 18;
  const H = T + rowH * comparisons.length + 8;
  const extent = Math.max(0.05, ...comparisons.flatMap((c) => [Math.abs(c.ci[0]), Math.abs(c.ci[1]), Math.abs(c.lift)]).filter(Number.isFinite));
  const x = (v) => L + ((Math.max(-extent, Math.min(extent, v)) + extent) / (2 * extent)) * (W - L - R);
  const pct = (v) => `${v >= 0 ? "+" : ""}${(v * 100).toFixed(1)}%`;
  const rows = comparisons.map((c, i) => {
    const yy = T + i * rowH + rowH / 2;
    const significant = c.ci[0] > 0 || c.ci[1] < 0;
    const stroke = significant ? (c.lift > 0 ? "#15803d" : "#b91c1c") : "#78716c";
    return h("g", { dataset: { arm: c.arm, metric: c.metric } },
      h("text", { x: 4, y: yy + 4 }, `${c.arm} · ${c.metric}`),
      h("line", { x1: x(c.ci[0]), x2: x(c.ci[1]), y1: yy, y2: yy, stroke, "stroke-width": 4, "stroke-linecap": "round" }),
      h("circle", { cx: x(c.lift), cy: yy, r: 5, fill: stroke }),
      h("title", {}, `lift ${pct(c.lift)}, 95% interval ${pct(c.ci[0])} … ${pct(c.ci[1])}, p = ${c.p_value.toFixed(3)}, chance to beat control ${(c.chance_to_beat_control * 100).toFixed(0)}%`));
  });
  return h("svg", { class: "chart interval-chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "lift intervals" },
    h("line", { x1: x(0), x2: x(0), y1: 4, y2: H - 4, stroke: "#a8a29e", "stroke-dasharray": "3 3" }),
    h("text", { x: x(-extent), y: 12 }, pct(-extent)), h("text", { x: x(0), y: 12, "text-anchor": "middle" }, "0"),
    h("text", { x: x(extent), y: 12, "text-anchor": "end" }, pct(extent)), rows);
}

async function report(id, slot) {
  try {
    const r = await api(`/v1/experiments/${encodeURIComponent(id)}/report`);
    const metrics = [...new Set(r.arms.flatMap((a) => Object.keys(a.metrics)))];
    fill(slot,
      r.srm.flagged ? h("p", { class: "error" }, `Sample ratio mismatch (p = ${r.srm.p_value.toExponential(2)}): the split is not what was configured; do not trust the comparisons.`) : null,
      (r.warnings || []).map((w) => h("p", { class: "note" }, w)),
      h("table", { class: "data" },
        h("thead", {}, h("tr", {}, h("th", {}, "Arm"), h("th", {}, "Users"), h("th", {}, "Exposures"), metrics.map((m) => h("th", {}, m)))),
        h("tbody", {}, r.arms.map((a) => h("tr", {}, h("td", {}, a.name), h("td", { class: "num" }, formatNumber(a.users)), h("td", { class: "num" }, formatNumber(a.exposures)),
          metrics.map((m) => h("td", { class: "num" }, a.metrics[m] ? `${a.metrics[m].value.toFixed(4)} [${a.metrics[m].ci[0].toFixed(4)}, ${a.metrics[m].ci[1].toFixed(4)}]` : "–")))))),
      r.comparisons.length ? [h("h3", {}, "Lift against the control, 95% intervals"), intervalChart(r.comparisons)] : h("p", { class: "note" }, "No comparisons yet: the arms need exposures."));
  } catch (error) {
    showError(slot, error);
  }
}

async function loadExperiments() {
  const slot = document.getElementById("experiments");
  try {
    const experiments = await api("/v1/experiments");
    fill(slot, experiments.length
      ? experiments.map((e) => {
        const body = h("div", {}, h("p", { class: "loading" }, "Loading the report…"));
        const details = h("details", { dataset: { experiment: e.id } },
          h("summary", {}, `${e.id} — ${e.surface}, ${e.state}, arms ${e.arms.map((a) => `${a.name} ${(a.share * 100).toFixed(0)}%`).join(" / ")}${e.started_at ? `, started ${when(e.started_at)}` : ""}`), body);
        details.addEventListener("toggle", () => details.open && report(e.id, body));
        return details;
      })
      : h("p", { class: "note" }, "No experiments. Create one with POST /v1/experiments (see the API document)."));
  } catch (error) {
    showError(slot, error);
  }
}

// ---------------------------------------------------------------- start

function loadAll() {
  loadStats().catch((e) => showError(document.getElementById("stats"), e));
  loadActivity().catch((e) => showError(document.getElementById("activity"), e));
  loadJobs();
  loadExperiments();
}

function askKey() {
  const slot = document.getElementById("key-slot");
  if (!slot.firstChild) slot.append(keyForm(() => { slot.replaceChildren(); loadAll(); }));
}

onKeyNeeded(askKey);
document.getElementById("key-button").addEventListener("click", askKey);
document.getElementById("train").addEventListener("click", train);
loadAll();
setInterval(() => loadStats().catch(() => {}), 15000);
