// tsapi explorer: pick a metric, range and aggregation; POST /query; draw a uPlot chart and a
// table, and show the request as a curl command. Plain JS, no build step; uPlot is vendored.
"use strict";

(function () {
  const TABLE_LIMIT = 5000; // rows drawn in the table; the chart always gets every row
  const TAG_VALUE_LIMIT = 1000; // options per tag key; rarer values can still be typed
  const $ = (id) => document.getElementById(id);
  const form = $("query-form");
  const metricSelect = $("metric");
  const statusLine = $("status");
  const chartBox = $("chart");
  const metrics = new Map();

  window.tsapiChart = null; // the uPlot instance of the last result (tests read it)

  function setStatus(state, text) {
    statusLine.dataset.state = state;
    statusLine.textContent = text;
  }

  // datetime-local holds "YYYY-MM-DDTHH:MM[:SS]" with no zone: this page reads it as UTC.
  function inputToIso(value) {
    return (value.length === 16 ? value + ":00" : value) + "Z";
  }

  function isoToInput(date) {
    return date.toISOString().slice(0, 19);
  }

  async function loadMetrics() {
    setStatus("loading", "Loading metrics…");
    const list = await getJson("metrics");
    metricSelect.replaceChildren();
    for (const m of list) {
      metrics.set(m.name, m);
      metricSelect.append(new Option(`${m.name} (${m.value_type})`, m.name));
    }
    if (!list.length) {
      metricSelect.append(new Option("no metrics stored yet", ""));
      setStatus("empty", "No metrics stored yet: POST some points to /ingest.");
      return;
    }
    fillRange();
    loadTagPicker(); // not awaited: the page is usable meanwhile
    setStatus("ready", `${list.length} metrics. Pick one and run a query.`);
  }

  // Default range: everything stored for the metric (end is exclusive, hence one more second).
  function fillRange() {
    const m = metrics.get(metricSelect.value);
    if (!m || !m.first_seen || !m.last_seen) return;
    const first = new Date(m.first_seen);
    const last = new Date(m.last_seen);
    first.setUTCMilliseconds(0);
    last.setUTCMilliseconds(0);
    $("start").value = isoToInput(first);
    $("end").value = isoToInput(new Date(last.getTime() + 1000));
  }

  // One multi-select per tag key of the metric (GET /metrics/{name}, then
  // GET /metrics/{name}/tags/{key}); a later metric change makes earlier answers stale.
  let pickerToken = 0;

  async function loadTagPicker() {
    const token = ++pickerToken;
    const picker = $("tag-picker");
    const box = $("tag-keys");
    picker.dataset.state = "loading";
    box.replaceChildren();
    const name = metricSelect.value;
    try {
      const base = `metrics/${encodeURIComponent(name)}`;
      const keys = name ? (await getJson(base)).tag_keys || [] : [];
      const answers = await Promise.all(
        keys.map((key) => getJson(`${base}/tags/${encodeURIComponent(key)}`)));
      if (token !== pickerToken) return;
      for (const { key, values } of answers) box.append(tagSelect(key, values));
      picker.dataset.state = keys.length ? "ready" : "empty";
    } catch (error) {
      if (token === pickerToken) tagPickerFailed(error);
    }
  }

  function tagSelect(key, values) {
    const select = document.createElement("select");
    select.multiple = true;
    select.size = Math.min(4, Math.max(2, values.length));
    select.dataset.tagKey = key;
    for (const value of values.slice(0, TAG_VALUE_LIMIT)) select.append(new Option(value, value));
    const label = document.createElement("label");
    label.append(key, select);
    return label;
  }

  function tagPickerFailed(error) {
    $("tag-picker").dataset.state = "error";
    $("tag-keys").textContent = `Tag values unavailable (${error.message}); type them below.`;
  }

  // With TSAPI_AUTH=required every API call needs a key: sent as a Bearer token, kept in
  // sessionStorage so it lives only as long as the tab.
  const KEY_STORAGE = "tsapi.apiKey";
  const keyInput = $("api-key");
  keyInput.value = sessionStorage.getItem(KEY_STORAGE) || "";

  function authHeaders(headers) {
    const key = keyInput.value.trim();
    return key ? { ...headers, Authorization: `Bearer ${key}` } : headers;
  }

  async function getJson(url) {
    const response = await fetch(url, { headers: authHeaders({ Accept: "application/json" }) });
    if (!response.ok) throw await problemError(response);
    return response.json();
  }

  // The picker's choices plus the typed ones; a key in both matches any of the values.
  function selectedTags() {
    const tags = parseTags($("tags").value) || {};
    for (const select of document.querySelectorAll("#tag-keys select")) {
      const chosen = [...select.selectedOptions].map((o) => o.value);
      if (!chosen.length) continue;
      const key = select.dataset.tagKey;
      const all = [...new Set([].concat(tags[key] ?? [], chosen))];
      tags[key] = all.length === 1 ? all[0] : all;
    }
    return Object.keys(tags).length ? tags : null;
  }

  // "device=a, site=b" (a repeated key means any of its values) or a JSON object, as the
  // query's `tags` filter; null when empty.
  function parseTags(text) {
    text = text.trim();
    if (!text) return null;
    if (text.startsWith("{")) {
      try {
        return JSON.parse(text);
      } catch (_) {
        throw new Error("Tags: not a valid JSON object");
      }
    }
    const tags = {};
    for (const pair of text.split(",")) {
      const at = pair.indexOf("=");
      if (at < 1) throw new Error(`Tags: '${pair.trim()}' is not key=value`);
      const key = pair.slice(0, at).trim();
      const value = pair.slice(at + 1).trim();
      if (key in tags) tags[key] = [].concat(tags[key], value);
      else tags[key] = value;
    }
    return tags;
  }

  function requestBody() {
    const body = {
      metric: metricSelect.value,
      start_time: inputToIso($("start").value),
      end_time: inputToIso($("end").value),
    };
    const tags = selectedTags();
    if (tags) body.tags = tags;
    const aggregation = $("aggregation").value;
    const interval = $("interval").value.trim();
    if (aggregation) {
      body.aggregation = aggregation;
      if (interval) body.interval = interval;
    }
    return body;
  }

  function curlCommand(url, body) {
    const quote = (s) => "'" + s.replace(/'/g, "'\\''") + "'";
    // The key itself is never printed: the command reads it from the environment.
    const auth = keyInput.value.trim() ? ` -H "Authorization: Bearer $TSAPI_API_KEY"` : "";
    return `curl -s ${quote(url)}${auth} -H 'Content-Type: application/json' -d ${quote(
      JSON.stringify(body))}`;
  }

  // Errors are RFC 9457 problem details: show the sentence and the field errors.
  async function problemError(response) {
    let text = `${response.status} ${response.statusText}`;
    try {
      const problem = await response.json();
      text = `${problem.status || response.status} ${problem.title || ""}: ${problem.detail || ""}`;
      for (const e of problem.errors || []) text += `\n  ${e.field}: ${e.message}`;
    } catch (_) { /* not JSON: keep the status line */ }
    return new Error(text);
  }

  async function runQuery(event) {
    event.preventDefault();
    const body = requestBody();
    const url = new URL("query", document.baseURI).href;
    $("curl").textContent = curlCommand(url, body);
    $("request-box").hidden = false;
    setStatus("loading", "Querying…");
    const started = performance.now();
    const response = await fetch("query", {
      method: "POST",
      headers: authHeaders({ "Content-Type": "application/json", Accept: "application/json" }),
      body: JSON.stringify(body),
    });
    if (!response.ok) throw await problemError(response);
    const rows = await response.json();
    const ms = Math.round(performance.now() - started);
    renderTable(rows);
    const drawn = renderChart(rows, body);
    const shown = rows.length > TABLE_LIMIT ? ` (table shows the first ${TABLE_LIMIT})` : "";
    // Raw results stop at the server's row limit: say so rather than show a partial range.
    const truncated = response.headers.get("X-Tsapi-Truncated") === "true"
      ? " Truncated: the server returns at most this many raw rows; narrow the range or"
        + " aggregate."
      : "";
    const chartNote = drawn ? "" : " Values are strings: no chart.";
    setStatus("done", `${rows.length} rows in ${ms} ms${shown}.${truncated}${chartNote}`);
  }

  function renderTable(rows) {
    const tbody = document.querySelector("#rows tbody");
    const fragment = document.createDocumentFragment();
    for (const row of rows.slice(0, TABLE_LIMIT)) {
      const tr = document.createElement("tr");
      for (const cell of [row.time, String(row.value)]) {
        const td = document.createElement("td");
        td.textContent = cell;
        tr.append(td);
      }
      fragment.append(tr);
    }
    tbody.replaceChildren(fragment);
  }

  // Returns whether a chart was drawn (string values have none).
  function renderChart(rows, body) {
    if (window.tsapiChart) window.tsapiChart.destroy();
    window.tsapiChart = null;
    chartBox.dataset.points = "0";
    if (rows.some((r) => typeof r.value !== "number")) return false;
    const xs = rows.map((r) => Date.parse(r.time) / 1000);
    const ys = rows.map((r) => r.value);
    const label = body.aggregation
      ? `${body.metric} ${body.aggregation}${body.interval ? " / " + body.interval : ""}`
      : body.metric;
    const options = {
      width: chartWidth(),
      height: 320,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
      scales: { x: { time: true } },
      series: [
        { label: "time (UTC)" },
        { label, stroke: "#1f6feb", width: 1.5, points: { show: rows.length <= 200 } },
      ],
    };
    window.tsapiChart = new uPlot(options, [xs, ys], chartBox);
    chartBox.dataset.points = String(window.tsapiChart.data[0].length);
    return true;
  }

  function chartWidth() {
    return Math.max(320, chartBox.clientWidth || document.body.clientWidth - 32);
  }

  function copyCurl() {
    const text = $("curl").textContent;
    // The clipboard API needs a secure context; elsewhere select the text for Ctrl-C.
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(() => ($("copy").textContent = "Copied"));
    } else {
      window.getSelection().selectAllChildren($("curl"));
      $("copy").textContent = "Selected: press Ctrl-C";
    }
    setTimeout(() => ($("copy").textContent = "Copy"), 2000);
  }

  function fail(error) {
    setStatus("error", error.message || String(error));
  }

  // An error must not leave the previous result on screen as if it answered this request.
  function clearResult() {
    if (window.tsapiChart) window.tsapiChart.destroy();
    window.tsapiChart = null;
    chartBox.dataset.points = "0";
    document.querySelector("#rows tbody").replaceChildren();
  }

  // data-runs counts finished queries, so a waiting test (or person) can tell them apart.
  function finished() {
    statusLine.dataset.runs = String(Number(statusLine.dataset.runs || 0) + 1);
  }

  metricSelect.addEventListener("change", () => {
    fillRange();
    loadTagPicker();
  });
  $("aggregation").addEventListener("change", () => {
    $("interval").disabled = !$("aggregation").value;
  });
  $("interval").disabled = true;
  form.addEventListener("submit", (event) => {
    runQuery(event)
      .catch((error) => {
        clearResult();
        fail(error);
      })
      .finally(finished);
  });
  $("copy").addEventListener("click", copyCurl);
  keyInput.addEventListener("change", () => {
    sessionStorage.setItem(KEY_STORAGE, keyInput.value.trim());
    loadMetrics().catch(fail);
  });
  window.addEventListener("resize", () => {
    if (window.tsapiChart) window.tsapiChart.setSize({ width: chartWidth(), height: 320 });
  });
  loadMetrics().catch(fail);
})();
