// Switchboard supervisor dashboard: live queue and pool figures from
// GET /v1/metrics/stream (Server-Sent Events read with fetch, so the token goes in
// the Authorization header, never in a URL). No libraries and nothing from the
// internet: it must work offline and in closed networks.
//
// Left open for days on a wall display, it must not grow: every queue and pool
// has one reused table row (keyed by id, dropped when the id leaves the
// snapshot), each chart series is a fixed-size ring, the alert feed keeps the
// newest FEED_MAX items, listeners are attached once, and the only timers are
// one ticker and at most one pending reconnect.
//
// Vendor scorecards (GET /v1/vendors/{id}/scorecard, this month in each vendor's
// time zone) are fetched with the same token for the vendors of the pools in the
// stream, when that set changes and then once a minute, from the same ticker.
"use strict";

(() => {
  const TOKEN_KEY = "switchboard.dashboard.token";
  const WINDOW_KEY = "switchboard.dashboard.window";
  const STREAM_PATH = "/v1/metrics/stream";
  const STEP_MS = 5000; // one chart point per 5 s...
  const RING = 360; // ...kept for 30 minutes
  const FEED_MAX = 50; // alert feed items
  const RECENT_ALERT_MS = 120000; // a queue stays marked this long after an SLA alert
  const STALL_MS = 45000; // no byte for this long (keepalives come every 15 s): reconnect
  const BACKOFF_MIN_MS = 1000;
  const BACKOFF_MAX_MS = 30000;
  const MAX_BUFFER = 8 * 1024 * 1024; // a frame larger than this is not a metrics frame
  const SVG_NS = "http://www.w3.org/2000/svg";

  const $ = (id) => document.getElementById(id);
  const el = {
    signin: $("signin"), form: $("signin-form"), token: $("token"), error: $("signin-error"),
    board: $("board"), conn: $("conn"), updated: $("updated"), tenant: $("tenant"),
    signout: $("signout"), windowLabel: $("window-label"), window: $("window"),
    sort: $("sort"), filter: $("filter"),
    queues: $("queues").tBodies[0], pools: $("pools").tBodies[0],
    queueCount: $("queue-count"), poolCount: $("pool-count"),
    chartQueue: $("chart-queue"), chartWaiting: $("chart-waiting"), chartSl: $("chart-sl"),
    feed: $("alert-feed"), noAlerts: $("no-alerts"),
    scorecards: $("scorecards"), cards: $("cards"), cardCount: $("scorecard-count"),
    cardsUpdated: $("scorecards-updated"),
  };
  const SCORECARD_EVERY_MS = 60000; // scorecards are monthly figures: once a minute is plenty

  // ---------------------------------------------------------------- formatting

  /** Seconds as "8.1 s", "42 s", "3:07" or "1:02:09"; "–" when unknown. */
  function fmtDuration(s) {
    if (s === null || s === undefined || !Number.isFinite(s)) return "–";
    s = Math.max(0, s);
    if (s < 9.95) return s.toFixed(1) + " s";
    const t = Math.round(s);
    if (t < 60) return t + " s";
    const h = Math.floor(t / 3600);
    const m = Math.floor((t % 3600) / 60);
    const sec = String(t % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
  }

  /** A 0..1 fraction as "85%" or "99.5%"; "–" when there is no denominator (null). */
  function fmtPct(v) {
    if (v === null || v === undefined || !Number.isFinite(v)) return "–";
    const p = Math.round(v * 1000) / 10;
    return (Number.isInteger(p) ? String(p) : p.toFixed(1)) + "%";
  }

  /** A threshold as people write it: "20 s", "15 min", "4 h". */
  function fmtThreshold(s) {
    if (!Number.isFinite(s)) return "?";
    if (s >= 3600 && s % 3600 === 0) return `${s / 3600} h`;
    if (s >= 60 && s % 60 === 0) return `${s / 60} min`;
    return `${s} s`;
  }

  function fmtCount(n) {
    return n === null || n === undefined || !Number.isFinite(n) ? "–" : n.toLocaleString("en");
  }

  function fmtClock(ms) {
    const d = new Date(ms);
    return [d.getHours(), d.getMinutes(), d.getSeconds()]
      .map((x) => String(x).padStart(2, "0")).join(":");
  }

  /** Sets text only when it changed: a frame a second must not churn the layout. */
  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  function toggle(node, cls, on) {
    if (node.classList.contains(cls) !== on) node.classList.toggle(cls, on);
  }

  // ---------------------------------------------------------------- chart series

  /** A fixed-size ring of (time, waiting, service level) points, one per STEP_MS. */
  class Series {
    constructor() {
      this.t = new Float64Array(RING);
      this.waiting = new Float64Array(RING);
      this.sl = new Float64Array(RING);
      this.start = 0;
      this.len = 0;
      this.lastXY = null; // the newest point of the last path(), if it has one
    }

    lastTime() {
      return this.len ? this.t[(this.start + this.len - 1) % RING] : -Infinity;
    }

    append(t, waiting, sl) {
      const i = (this.start + this.len) % RING;
      if (this.len === RING) this.start = (this.start + 1) % RING;
      else this.len += 1;
      this.t[i] = t;
      this.waiting[i] = waiting;
      this.sl[i] = sl;
    }

    /** The point of bucket `t`: replaces the last one in the same bucket; buckets
     * skipped (no data: signed out, disconnected, tab asleep) stay empty (NaN). */
    sample(t, waiting, sl) {
      const last = this.lastTime();
      if (t < last) return;
      if (t === last) {
        const i = (this.start + this.len - 1) % RING;
        this.waiting[i] = waiting;
        this.sl[i] = sl;
        return;
      }
      if (this.len) {
        const from = Math.max(last + STEP_MS, t - (RING - 1) * STEP_MS);
        for (let g = from; g < t; g += STEP_MS) this.append(g, NaN, NaN);
      }
      this.append(t, waiting, sl);
    }

    /** SVG path data of one field over the last RING buckets ending at `end`. */
    path(field, end, width, height, ymax) {
      const values = this[field];
      const span = (RING - 1) * STEP_MS;
      let d = "";
      let pen = false;
      this.lastXY = null;
      for (let k = 0; k < this.len; k++) {
        const i = (this.start + k) % RING;
        const v = values[i];
        if (!Number.isFinite(v)) {
          pen = false;
          continue;
        }
        const x = width - ((end - this.t[i]) / span) * width;
        const y = height - (Math.min(v, ymax) / ymax) * height;
        d += (pen ? "L" : "M") + x.toFixed(1) + " " + y.toFixed(1);
        pen = true;
        this.lastXY = k === this.len - 1 ? [x, y] : null;
      }
      return d;
    }

    max(field) {
      let m = 0;
      for (let k = 0; k < this.len; k++) {
        const v = this[field][(this.start + k) % RING];
        if (v > m) m = v;
      }
      return m;
    }
  }

  function bucket(ms) {
    return Math.floor(ms / STEP_MS) * STEP_MS;
  }

  function svg(tag, attrs, parent) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (parent) parent.appendChild(node);
    return node;
  }

  function niceMax(v) {
    if (v <= 5) return 5;
    const p = 10 ** Math.floor(Math.log10(v));
    for (const f of [1, 2, 2.5, 5, 10]) if (f * p >= v) return f * p;
    return 10 * p;
  }

  /** The two big charts: built once, their paths and labels updated in place. */
  const W = 400;
  const H = 120;
  const PAD_L = 34;
  const PAD_B = 16;
  function buildChart(root) {
    const plotW = W - PAD_L;
    const plotH = H - PAD_B - 6;
    const g = svg("g", { transform: `translate(${PAD_L},6)` }, root);
    svg("rect", { class: "plot-bg", x: 0, y: 0, width: plotW, height: plotH }, g);
    svg("line", { class: "grid-line", x1: 0, x2: plotW, y1: plotH / 2, y2: plotH / 2 }, g);
    const target = svg("line", { class: "target-line", x1: 0, x2: plotW, y1: 0, y2: 0 }, g);
    const line = svg("path", { class: "series", d: "" }, g);
    const dot = svg("circle", { class: "series-dot", r: 2.5, cx: -10, cy: -10, visibility: "hidden" }, g);
    const top = svg("text", { class: "axis", x: -4, y: 8, "text-anchor": "end" }, g);
    const mid = svg("text", { class: "axis", x: -4, y: plotH / 2 + 4, "text-anchor": "end" }, g);
    svg("text", { class: "axis", x: -4, y: plotH, "text-anchor": "end" }, g).textContent = "0";
    const t0 = svg("text", { class: "axis", x: 0, y: plotH + 13 }, g);
    t0.textContent = "−30 min";
    const t1 = svg("text", { class: "axis", x: plotW, y: plotH + 13, "text-anchor": "end" }, g);
    t1.textContent = "now";
    return { line, dot, target, top, mid, plotW, plotH };
  }
  const waitingChart = buildChart(el.chartWaiting);
  const slChart = buildChart(el.chartSl);

  /** The newest point as a dot: a single point draws no line. */
  function drawDot(chart, xy) {
    chart.dot.setAttribute("visibility", xy ? "visible" : "hidden");
    if (xy) {
      chart.dot.setAttribute("cx", xy[0].toFixed(1));
      chart.dot.setAttribute("cy", xy[1].toFixed(1));
    }
  }

  function drawCharts() {
    const view = state.queues.get(state.selected);
    const end = bucket(Date.now());
    if (!view) {
      waitingChart.line.setAttribute("d", "");
      slChart.line.setAttribute("d", "");
      drawDot(waitingChart, null);
      drawDot(slChart, null);
      slChart.target.setAttribute("visibility", "hidden");
      return;
    }
    const s = view.series;
    const ymax = niceMax(s.max("waiting"));
    waitingChart.line.setAttribute("d", s.path("waiting", end, waitingChart.plotW, waitingChart.plotH, ymax));
    drawDot(waitingChart, s.lastXY);
    setText(waitingChart.top, String(ymax));
    setText(waitingChart.mid, String(ymax / 2));
    waitingChart.target.setAttribute("visibility", "hidden");
    slChart.line.setAttribute("d", s.path("sl", end, slChart.plotW, slChart.plotH, 1));
    drawDot(slChart, s.lastXY);
    setText(slChart.top, "100%");
    setText(slChart.mid, "50%");
    const target = view.data.service_level_target;
    if (Number.isFinite(target)) {
      const y = (slChart.plotH - target * slChart.plotH).toFixed(1);
      slChart.target.setAttribute("y1", y);
      slChart.target.setAttribute("y2", y);
      slChart.target.setAttribute("visibility", "visible");
    } else {
      slChart.target.setAttribute("visibility", "hidden");
    }
  }

  function drawSpark(view, end) {
    const s = view.series;
    const ymax = niceMax(s.max("waiting"));
    const d = s.path("waiting", end, 90, 18, ymax);
    if (view.sparkPath.getAttribute("d") !== d) view.sparkPath.setAttribute("d", d);
  }

  // ---------------------------------------------------------------- state

  const state = {
    token: null,
    window: sessionStorage.getItem(WINDOW_KEY) || "15m",
    queues: new Map(), // id -> row view
    pools: new Map(),
    order: [], // queue ids in table order
    poolOrder: [],
    seenAlerts: new Set(), // keys of the alerts in the last frame (at most 50)
    firstFrame: true,
    lastAt: 0, // the last snapshot's `at` (server clock)
    lastFrameWall: 0, // Date.now() when it came
    selected: null,
  };
  const conn = {
    gen: 0, ctrl: null, backoff: BACKOFF_MIN_MS, retryMs: 0, retryTimer: 0, lastByte: 0, live: false,
  };

  // ---------------------------------------------------------------- rows

  const QUEUE_CELLS = ["waiting", "longest", "sl", "target", "asa", "abandoned", "agents", "breaches"];

  function newQueueRow(id) {
    const row = document.createElement("tr");
    row.dataset.queue = id;
    const head = document.createElement("th");
    head.scope = "row";
    const name = document.createElement("button");
    name.type = "button";
    name.className = "qname";
    const qid = document.createElement("span");
    qid.className = "qid";
    const badge = document.createElement("span");
    badge.className = "badge";
    head.append(name, qid, badge);
    row.appendChild(head);
    const cells = {};
    for (const key of QUEUE_CELLS) {
      const td = document.createElement("td");
      td.className = "num " + key;
      row.appendChild(td);
      cells[key] = td;
    }
    const sparkCell = document.createElement("td");
    sparkCell.className = "spark";
    const spark = svg("svg", { viewBox: "0 0 90 18", width: 90, height: 18, "aria-hidden": "true" }, sparkCell);
    const sparkPath = svg("path", { d: "" }, spark);
    row.appendChild(sparkCell);
    return {
      id, row, name, qid, badge, cells, sparkPath, series: new Series(), data: {},
      breachAt: -Infinity, warningAt: -Infinity, urgency: 0,
    };
  }

  function updateQueueRow(view, q) {
    view.data = q;
    setText(view.name, q.title || view.id);
    setText(view.qid, q.title && q.title !== view.id ? view.id : "");
    const c = view.cells;
    setText(c.waiting, fmtCount(q.waiting));
    setText(c.longest, fmtDuration(q.longest_wait_s));
    const sl = q.service_level || {};
    setText(c.sl, fmtPct(sl.value));
    c.sl.title = Number.isFinite(sl.threshold_s) ? `answered within ${sl.threshold_s} s` : "";
    setText(c.target, Number.isFinite(q.service_level_target)
      ? `${fmtPct(q.service_level_target)} in ${fmtThreshold(sl.threshold_s)}` : "–");
    setText(c.asa, fmtDuration(q.asa_s));
    setText(c.abandoned, Number.isFinite(q.abandoned)
      ? `${fmtCount(q.abandoned)} (${fmtPct(q.abandon_rate)})` : "–");
    setText(c.agents, fmtCount(q.agents_available));
    setText(c.breaches, fmtCount(q.sla_breaches));
    c.breaches.title = `${q.sla_breaches ?? 0} breaches, ${q.sla_warnings ?? 0} warnings in this window`;
    const below = Number.isFinite(sl.value) && Number.isFinite(q.service_level_target)
      && sl.value < q.service_level_target;
    view.below = below;
    toggle(view.row, "below-target", below);
    toggle(c.sl, "bad", below);
    toggle(c.agents, "bad", q.agents_available === 0 && q.waiting > 0);
  }

  /** Marks from recent alerts and the status badge; `now` is the server's estimated time. */
  function markQueue(view, now) {
    const breach = now - view.breachAt <= RECENT_ALERT_MS;
    const warning = !breach && now - view.warningAt <= RECENT_ALERT_MS;
    toggle(view.row, "breach", breach);
    toggle(view.row, "warning", warning);
    const label = breach ? "SLA breach" : warning ? "SLA warning" : view.below ? "below target" : "";
    setText(view.badge, label);
    view.urgency = (breach ? 4 : 0) + (view.below ? 2 : 0) + (warning ? 1 : 0);
  }

  function flash(view) {
    // restart the animation; the class goes on animationend (one listener, on the table)
    view.row.classList.remove("flash");
    void view.row.offsetWidth;
    view.row.classList.add("flash");
  }

  const POOL_CELLS = ["runby", "available", "away", "offline", "occupancy", "sl", "handled", "asa"];

  function newPoolRow(id) {
    const row = document.createElement("tr");
    row.dataset.pool = id;
    const head = document.createElement("th");
    head.scope = "row";
    const name = document.createElement("span");
    const qid = document.createElement("span");
    qid.className = "qid";
    head.append(name, qid);
    row.appendChild(head);
    const cells = {};
    for (const key of POOL_CELLS) {
      const td = document.createElement("td");
      td.className = (key === "runby" ? "" : "num ") + key;
      row.appendChild(td);
      cells[key] = td;
    }
    return { id, row, name, qid, cells, sortKey: "" };
  }

  function updatePoolRow(view, p) {
    setText(view.name, p.title || view.id);
    setText(view.qid, p.title && p.title !== view.id ? view.id : "");
    const c = view.cells;
    const outsourced = p.kind === "outsourced";
    const runBy = outsourced
      ? [p.vendor_name || p.vendor || "vendor", p.location].filter(Boolean).join(", ")
      : "in-house";
    setText(c.runby, runBy);
    const agents = p.agents || {};
    setText(c.available, fmtCount(agents.available));
    setText(c.away, fmtCount(agents.away));
    setText(c.offline, fmtCount(agents.offline));
    setText(c.occupancy, fmtPct(p.occupancy));
    setText(c.sl, fmtPct((p.service_level || {}).value));
    setText(c.handled, fmtCount(p.answered));
    setText(c.asa, fmtDuration(p.asa_s));
    view.sortKey = (outsourced ? "1" : "0") + (p.vendor || "") + "\u0000" + view.id;
  }

  // ---------------------------------------------------------------- snapshot

  function alertKey(a) {
    return `${a.type}|${a.queue}|${a.contact}|${a.sla}|${a.at}`;
  }

  function addToFeed(a, title) {
    const li = document.createElement("li");
    const breach = a.type === "sla.breached";
    li.className = breach ? "breach" : "warning";
    const time = document.createElement("time");
    if (Number.isFinite(a.at)) {
      time.dateTime = new Date(a.at).toISOString();
      time.textContent = fmtClock(a.at);
    } else {
      time.textContent = "--:--:--";
    }
    const kind = document.createElement("strong");
    kind.textContent = breach ? "Breach" : "Warning";
    const what = document.createElement("span");
    const sla = { answer: "answer", first_response: "first response", resolution: "resolution" }[a.sla] || a.sla;
    // a vendor-scoped token gets no contact id for contacts its pool could not see
    const who = a.contact ? `, contact ${a.contact}` : "";
    what.textContent = ` ${title}: ${sla} SLA${who}`;
    li.append(time, " ", kind, what);
    el.feed.insertBefore(li, el.feed.firstChild);
    while (el.feed.childElementCount > FEED_MAX) el.feed.lastElementChild.remove();
    el.noAlerts.hidden = true;
  }

  function applySnapshot(s) {
    state.lastAt = Number.isFinite(s.at) ? s.at : Date.now();
    state.lastFrameWall = Date.now();
    setText(el.tenant, s.tenant ? `· ${s.tenant}` : "");

    // queues: one row each, reused; rows of queues gone from the snapshot are dropped
    const queues = s.queues || {};
    let membership = false;
    for (const [id, q] of Object.entries(queues)) {
      let view = state.queues.get(id);
      if (!view) {
        view = newQueueRow(id);
        state.queues.set(id, view);
        membership = true;
      }
      updateQueueRow(view, q);
    }
    for (const [id, view] of state.queues) {
      if (!Object.hasOwn(queues, id)) {
        view.row.remove();
        state.queues.delete(id);
        membership = true;
      }
    }

    // alerts: newest first; the ones not in the last frame are new
    const alerts = Array.isArray(s.alerts) ? s.alerts : [];
    const seen = new Set();
    const fresh = [];
    for (const a of alerts) {
      const key = alertKey(a);
      seen.add(key);
      if (!state.seenAlerts.has(key)) fresh.push(a);
      const view = state.queues.get(a.queue);
      if (!view || !Number.isFinite(a.at)) continue;
      if (a.type === "sla.breached") view.breachAt = Math.max(view.breachAt, a.at);
      else if (a.type === "sla.warning") view.warningAt = Math.max(view.warningAt, a.at);
    }
    state.seenAlerts = seen;
    for (let i = fresh.length - 1; i >= 0; i--) {
      const a = fresh[i];
      const view = state.queues.get(a.queue);
      addToFeed(a, view ? view.name.textContent : a.queue);
      if (view && !state.firstFrame) flash(view);
    }
    for (const view of state.queues.values()) markQueue(view, state.lastAt);

    // pools
    const pools = s.pools || {};
    let poolMembership = false;
    for (const [id, p] of Object.entries(pools)) {
      let view = state.pools.get(id);
      if (!view) {
        view = newPoolRow(id);
        state.pools.set(id, view);
        poolMembership = true;
      }
      updatePoolRow(view, p);
    }
    for (const [id, view] of state.pools) {
      if (!Object.hasOwn(pools, id)) {
        view.row.remove();
        state.pools.delete(id);
        poolMembership = true;
      }
    }
    if (poolMembership) sortPools();
    syncVendors(pools);

    sortQueues();
    if (membership) rebuildChartChoices();
    applyFilter();
    setText(el.queueCount, `(${state.queues.size})`);
    setText(el.poolCount, `(${state.pools.size})`);
    const win = s.window && s.window.name ? s.window.name : state.window;
    setText(el.updated, `window ${win} · updated ${fmtClock(Date.now())}`);
    sampleAll();
    state.firstFrame = false;
  }

  function sampleAll() {
    const t = bucket(Date.now());
    for (const view of state.queues.values()) {
      const q = view.data;
      const sl = q.service_level && Number.isFinite(q.service_level.value) ? q.service_level.value : NaN;
      view.series.sample(t, Number.isFinite(q.waiting) ? q.waiting : NaN, sl);
      drawSpark(view, t);
    }
    drawCharts();
  }

  function sortQueues() {
    const views = [...state.queues.values()];
    if (el.sort.value === "name") {
      views.sort((a, b) => a.id.localeCompare(b.id));
    } else {
      const ratio = (v) => (v.data.longest_wait_s || 0) / ((v.data.service_level || {}).threshold_s || 20);
      views.sort((a, b) => b.urgency - a.urgency || ratio(b) - ratio(a)
        || (b.data.waiting || 0) - (a.data.waiting || 0) || a.id.localeCompare(b.id));
    }
    const order = views.map((v) => v.id);
    if (order.length === state.order.length && order.every((id, i) => id === state.order[i])) return;
    state.order = order;
    for (const v of views) el.queues.appendChild(v.row); // moves the existing rows
  }

  function sortPools() {
    const views = [...state.pools.values()].sort((a, b) => a.sortKey.localeCompare(b.sortKey));
    for (const v of views) el.pools.appendChild(v.row);
  }

  function applyFilter() {
    const f = el.filter.value.trim().toLowerCase();
    for (const view of state.queues.values()) {
      const hit = !f || view.id.toLowerCase().includes(f) || view.name.textContent.toLowerCase().includes(f);
      if (view.row.hidden === hit) view.row.hidden = !hit;
    }
  }

  function rebuildChartChoices() {
    const ids = [...state.queues.keys()].sort((a, b) => a.localeCompare(b));
    // the first time, and when the charted queue goes: the most urgent one
    if (!state.queues.has(state.selected)) state.selected = state.order.length ? state.order[0] : null;
    el.chartQueue.replaceChildren(...ids.map((id) => {
      const opt = document.createElement("option");
      opt.value = id;
      opt.textContent = state.queues.get(id).name.textContent || id;
      return opt;
    }));
    if (state.selected) el.chartQueue.value = state.selected;
    markSelected();
  }

  function markSelected() {
    for (const view of state.queues.values()) toggle(view.row, "selected", view.id === state.selected);
  }

  function resetBoard() {
    for (const view of state.queues.values()) view.row.remove();
    for (const view of state.pools.values()) view.row.remove();
    state.queues.clear();
    state.pools.clear();
    state.order = [];
    state.seenAlerts = new Set();
    state.firstFrame = true;
    state.selected = null;
    el.feed.replaceChildren();
    el.noAlerts.hidden = false;
    el.chartQueue.replaceChildren();
    resetScorecards();
    setText(el.tenant, "");
    setText(el.updated, "");
    drawCharts();
  }

  // ---------------------------------------------------------------- vendor scorecards

  const cards = {
    gen: 0, // bumped on reset: answers to older requests are dropped
    ids: [], // vendor ids of the pools in the stream, sorted
    views: new Map(), // vendor id -> card view
    busy: false,
    fetchedAt: 0,
  };

  const CARD_ROWS = [
    ["answered", "Answered"],
    ["commitment", "Commitment"],
    ["sl", "Service level"],
    ["asa", "ASA"],
    ["aht", "AHT"],
    ["abandoned", "Abandoned"],
    ["csat", "CSAT"],
    ["nps", "NPS"],
    ["cost", "Cost"],
    ["breaches", "SLA breaches"],
  ];

  function fmtFixed(v, digits) {
    return v === null || v === undefined || !Number.isFinite(v) ? "–" : v.toFixed(digits);
  }

  function fmtMoney(cost) {
    if (!cost || !Number.isFinite(cost.amount)) return "–";
    const amount = cost.amount.toLocaleString("en", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    return `${cost.currency} ${amount}`;
  }

  function newCard(id) {
    const card = document.createElement("article");
    card.className = "card";
    card.dataset.vendor = id;
    const h = document.createElement("h3");
    const name = document.createElement("span");
    const vid = document.createElement("span");
    vid.className = "qid";
    h.append(name, vid);
    const dl = document.createElement("dl");
    const cells = {};
    for (const [key, label] of CARD_ROWS) {
      const dt = document.createElement("dt");
      dt.textContent = label;
      const dd = document.createElement("dd");
      dd.dataset.field = key;
      dd.textContent = "–";
      dl.append(dt, dd);
      cells[key] = dd;
    }
    card.append(h, dl);
    return { id, card, name, vid, cells };
  }

  function updateCard(view, sc) {
    setText(view.name, sc.name || view.id);
    setText(view.vid, sc.name && sc.name !== view.id ? view.id : "");
    const c = view.cells;
    const vol = sc.volume || {};
    setText(c.answered, fmtCount(vol.answered) + (Number.isFinite(vol.cap) ? ` of ${fmtCount(vol.cap)} cap` : ""));
    const met = vol.commitment_met;
    setText(c.commitment, Number.isFinite(vol.commitment)
      ? `${fmtCount(vol.commitment)} · ${met ? "met" : "not met yet"}` : "–");
    const sl = (sc.service_level || {}).value;
    const target = sc.service_level_target;
    setText(c.sl, fmtPct(sl) + (Number.isFinite(target) ? ` (target ${fmtPct(target)})` : ""));
    toggle(c.sl, "bad", Number.isFinite(sl) && Number.isFinite(target) && sl < target);
    setText(c.asa, fmtDuration(sc.asa_s));
    setText(c.aht, fmtDuration(sc.aht_s));
    setText(c.abandoned, Number.isFinite(sc.abandoned)
      ? `${fmtCount(sc.abandoned)} (${fmtPct(sc.abandon_rate)})` : "–");
    setText(c.csat, fmtFixed(sc.csat, 2));
    setText(c.nps, Number.isFinite(sc.nps) ? (sc.nps > 0 ? "+" : "") + sc.nps.toFixed(1) : "–");
    setText(c.cost, fmtMoney(sc.cost));
    setText(c.breaches, fmtCount(sc.sla_breaches));
    toggle(c.breaches, "bad", sc.sla_breaches > 0);
    toggle(view.card, "unavailable", false);
    view.card.title = "";
  }

  /** The vendors of the pools in the stream (a scoped token: its own); fetches
   * their scorecards at once when that set changes. */
  function syncVendors(pools) {
    const ids = [...new Set(Object.values(pools).map((p) => p.vendor).filter(Boolean))].sort();
    if (ids.length === cards.ids.length && ids.every((id, i) => id === cards.ids[i])) return;
    cards.ids = ids;
    for (const [id, view] of cards.views) {
      if (!ids.includes(id)) {
        view.card.remove();
        cards.views.delete(id);
      }
    }
    for (const id of ids) {
      if (!cards.views.has(id)) cards.views.set(id, newCard(id));
    }
    for (const id of ids) el.cards.appendChild(cards.views.get(id).card); // in id order
    el.scorecards.hidden = ids.length === 0;
    setText(el.cardCount, ids.length ? `(${ids.length})` : "");
    cards.busy = false;
    refreshScorecards();
  }

  async function fetchScorecard(id) {
    const res = await fetch(`/v1/vendors/${encodeURIComponent(id)}/scorecard`, {
      headers: { Authorization: `Bearer ${state.token}`, Accept: "application/json" },
      cache: "no-store",
    });
    if (!res.ok) throw new Error(`${res.status}: ${await problemDetail(res)}`);
    return res.json();
  }

  async function refreshScorecards() {
    const gen = ++cards.gen;
    cards.busy = true;
    cards.fetchedAt = Date.now();
    const ids = cards.ids.slice();
    const results = await Promise.allSettled(ids.map(fetchScorecard));
    if (gen !== cards.gen) return; // reset, or a newer refresh began
    cards.busy = false;
    results.forEach((r, i) => {
      const view = cards.views.get(ids[i]);
      if (!view) return;
      if (r.status === "fulfilled") {
        updateCard(view, r.value);
      } else {
        // keep the last figures, greyed out, and say why on hover
        toggle(view.card, "unavailable", true);
        view.card.title = `Scorecard not available: ${r.reason && r.reason.message}`;
      }
    });
    setText(el.cardsUpdated, `this month, each vendor's time zone · updated ${fmtClock(Date.now())}`);
  }

  function resetScorecards() {
    cards.gen += 1;
    cards.ids = [];
    cards.busy = false;
    cards.fetchedAt = 0;
    for (const view of cards.views.values()) view.card.remove();
    cards.views.clear();
    el.scorecards.hidden = true;
    setText(el.cardCount, "");
    setText(el.cardsUpdated, "");
  }

  // ---------------------------------------------------------------- the stream

  function setConn(kind, text) {
    el.conn.className = "conn conn-" + kind;
    setText(el.conn, text);
  }

  async function problemDetail(res) {
    try {
      const body = await res.json();
      return body.detail || body.title || res.statusText;
    } catch {
      return res.statusText || `HTTP ${res.status}`;
    }
  }

  /** Splits complete SSE frames off `buf`, dispatches them, returns the rest. */
  function drain(buf) {
    for (;;) {
      const m = /\r\n\r\n|\n\n|\r\r/.exec(buf);
      if (!m) return buf;
      const frame = buf.slice(0, m.index);
      buf = buf.slice(m.index + m[0].length);
      let event = "message";
      const data = [];
      for (const line of frame.split(/\r\n|\n|\r/)) {
        if (!line || line.startsWith(":")) continue; // comment: keepalive
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "event") event = value;
        else if (field === "data") data.push(value);
        else if (field === "retry" && /^\d+$/.test(value)) conn.retryMs = Number(value);
      }
      if (event === "metrics" && data.length) onMetrics(data.join("\n"));
    }
  }

  function onMetrics(text) {
    let snapshot;
    try {
      snapshot = JSON.parse(text);
    } catch {
      return; // a malformed frame is skipped; the next one carries the whole state
    }
    applySnapshot(snapshot);
    conn.backoff = BACKOFF_MIN_MS;
    if (!conn.live) {
      conn.live = true;
      setConn("live", "live");
    }
  }

  function stopStream() {
    conn.gen += 1;
    conn.live = false;
    if (conn.ctrl) conn.ctrl.abort();
    conn.ctrl = null;
    clearTimeout(conn.retryTimer);
    conn.retryTimer = 0;
  }

  function retryLater(why) {
    stopStream();
    // the server's `retry:` hint is the shortest wait; it doubles from there on
    const base = Math.min(Math.max(conn.backoff, conn.retryMs), BACKOFF_MAX_MS);
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
    conn.backoff = Math.min(base * 2, BACKOFF_MAX_MS);
    setConn("retry", `reconnecting in ${Math.ceil(delay / 1000)} s (${why})`);
    conn.retryTimer = setTimeout(connect, delay);
  }

  async function connect() {
    stopStream();
    const gen = conn.gen;
    const ctrl = new AbortController();
    conn.ctrl = ctrl;
    conn.lastByte = Date.now();
    setConn("connecting", "connecting…");
    let res;
    try {
      res = await fetch(`${STREAM_PATH}?window=${encodeURIComponent(state.window)}`, {
        headers: { Authorization: `Bearer ${state.token}`, Accept: "text/event-stream" },
        cache: "no-store",
        signal: ctrl.signal,
      });
    } catch {
      if (gen === conn.gen) retryLater("server unreachable");
      return;
    }
    if (gen !== conn.gen) return;
    if (res.status === 401 || res.status === 403) {
      const detail = await problemDetail(res);
      if (gen === conn.gen) signOut(`The token was refused: ${detail}`);
      return;
    }
    if (!res.ok || !res.body) {
      const detail = await problemDetail(res);
      if (gen === conn.gen) retryLater(`${res.status}: ${detail}`);
      return;
    }
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (gen !== conn.gen) return;
        if (done) break;
        conn.lastByte = Date.now();
        buf = drain(buf + decoder.decode(value, { stream: true }));
        if (buf.length > MAX_BUFFER) throw new Error("frame too large");
      }
    } catch {
      if (gen === conn.gen) retryLater("connection lost");
      return;
    }
    if (gen === conn.gen) retryLater("the server ended the stream");
  }

  // ---------------------------------------------------------------- sign-in

  function start() {
    el.signin.hidden = true;
    el.board.hidden = false;
    el.signout.hidden = false;
    el.windowLabel.hidden = false;
    setText(el.error, "");
    connect();
  }

  function signOut(message) {
    stopStream();
    state.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    resetBoard();
    el.board.hidden = true;
    el.signout.hidden = true;
    el.windowLabel.hidden = true;
    el.signin.hidden = false;
    setText(el.error, message || "");
    setConn("idle", "signed out");
    el.token.focus();
  }

  /** `#token=<token>` (a wall display): taken, then removed from the address bar. */
  function tokenFromHash() {
    const hash = location.hash.replace(/^#/, "");
    let token = null;
    for (const part of hash.split("&")) {
      if (part.startsWith("token=")) {
        try {
          token = decodeURIComponent(part.slice(6)).trim();
        } catch {
          token = null;
        }
      }
    }
    if (hash) history.replaceState(null, "", location.pathname + location.search);
    return token || null;
  }

  // ---------------------------------------------------------------- wiring (once)

  el.form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const token = el.token.value.trim();
    el.token.value = "";
    if (!token) {
      setText(el.error, "Enter a supervisor token.");
      return;
    }
    state.token = token;
    sessionStorage.setItem(TOKEN_KEY, token);
    start();
  });
  el.signout.addEventListener("click", () => signOut("Signed out."));
  // a wall display's address edited to another #token=: switch to it
  window.addEventListener("hashchange", () => {
    const token = tokenFromHash();
    if (!token) return;
    stopStream();
    resetBoard();
    state.token = token;
    sessionStorage.setItem(TOKEN_KEY, token);
    start();
  });
  el.window.value = state.window;
  el.window.addEventListener("change", () => {
    state.window = el.window.value;
    sessionStorage.setItem(WINDOW_KEY, state.window);
    resetBoard();
    conn.backoff = BACKOFF_MIN_MS;
    if (state.token) connect();
  });
  el.sort.addEventListener("change", sortQueues);
  el.filter.addEventListener("input", applyFilter);
  el.queues.addEventListener("click", (ev) => {
    const row = ev.target.closest("tr[data-queue]");
    if (!row) return;
    state.selected = row.dataset.queue;
    el.chartQueue.value = state.selected;
    markSelected();
    drawCharts();
  });
  el.queues.addEventListener("animationend", (ev) => {
    if (ev.target.classList) ev.target.classList.remove("flash");
  });
  el.chartQueue.addEventListener("change", () => {
    state.selected = el.chartQueue.value;
    markSelected();
    drawCharts();
  });

  // the one ticker: chart points, alert marks ageing out, a stalled stream
  setInterval(() => {
    if (!state.token) return;
    if (conn.live && Date.now() - conn.lastByte > STALL_MS) retryLater("no data for 45 s");
    if (!conn.live) return;
    if (cards.ids.length && !cards.busy && Date.now() - cards.fetchedAt >= SCORECARD_EVERY_MS) {
      refreshScorecards();
    }
    const now = state.lastAt + (Date.now() - state.lastFrameWall);
    let changed = false;
    for (const view of state.queues.values()) {
      const before = view.urgency;
      markQueue(view, now);
      changed = changed || view.urgency !== before;
    }
    if (changed) sortQueues();
    const t = bucket(Date.now());
    for (const view of state.queues.values()) {
      if (view.series.lastTime() < t) {
        sampleAll();
        break;
      }
    }
  }, 1000);

  // read-only figures for tests and the curious: sizes that must stay bounded
  window.switchboardDashboard = Object.freeze({
    stats: () => ({
      queues: state.queues.size,
      pools: state.pools.size,
      feed: el.feed.childElementCount,
      seenAlerts: state.seenAlerts.size,
      maxPoints: Math.max(0, ...[...state.queues.values()].map((v) => v.series.len)),
      scorecards: cards.views.size,
      live: conn.live,
    }),
  });

  state.token = tokenFromHash() || sessionStorage.getItem(TOKEN_KEY);
  if (state.token) {
    sessionStorage.setItem(TOKEN_KEY, state.token);
    start();
  } else {
    signOut("");
  }
})();
