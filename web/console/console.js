// The admin console: a client of the export-service REST API, no framework, no build step.
// Every value from the API is treated as hostile text: the DOM is built with createElement
// and textContent, never innerHTML, and the page's CSP allows no inline script or style.
"use strict";

(() => {
  const TOKEN_KEY = "exportService.token";
  const CAMPAIGN_KEY = "exportService.campaign";
  const POLL_MS = 2000;
  const PAGE = 50;
  const MAX_PAGE = 200; // the API's largest `limit`
  const ACTIVE = new Set(["PENDING", "TRIGGERED"]);
  const CCPA_ACTIVE = new Set(["PENDING", "RUNNING"]);
  const STATUSES = ["PENDING", "TRIGGERED", "FINISHED", "FAILED", "EXPIRED", "CANCELLED", "DELETED"];
  // The API lives one level above /console/ (also behind a proxy that adds a path prefix).
  const API_ROOT = new URL("../", document.baseURI);

  const $ = (id) => document.getElementById(id);

  const state = {
    me: null,
    campaign: null,
    types: [],
    records: [], // the listed exports, newest first
    next: null,
    rows: new Map(), // export id -> {tr, cells}
    detail: null,
    detailId: null,
    ccpa: [],
    ccpaNext: null,
    // The list failed for a passing reason (503 while the worker recovers, no answer): retry.
    listRetry: false,
    timer: null,
    // Bumped whenever the campaign or the identity changes: late answers are dropped.
    generation: 0,
  };

  // ---------------------------------------------------------------- DOM helpers

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = String(value);
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child !== undefined && child !== null) node.append(child); // strings become text
    }
    return node;
  }

  function show(node, visible) {
    node.hidden = !visible;
  }

  function setText(node, text) {
    node.textContent = text === undefined || text === null ? "" : String(text);
    show(node, Boolean(text));
  }

  // replaceChildren() would turn a null into the text "null".
  function fill(node, ...children) {
    node.replaceChildren(...children.filter((c) => c !== undefined && c !== null));
  }

  function clear(node) {
    fill(node);
  }

  const numberFormat = new Intl.NumberFormat(undefined);

  function fmtInt(n) {
    return typeof n === "number" && Number.isFinite(n) ? numberFormat.format(Math.round(n)) : "–";
  }

  function fmtBytes(n) {
    if (typeof n !== "number") return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let value = n;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
  }

  function fmtDuration(seconds) {
    if (typeof seconds !== "number" || !Number.isFinite(seconds) || seconds < 0) return "–";
    const s = Math.round(seconds);
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min ${String(s % 60).padStart(2, "0")} s`;
    return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
  }

  function fmtTime(iso) {
    if (!iso) return "–";
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return String(iso);
    return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
  }

  function timeEl(iso) {
    return el("time", { datetime: iso || undefined, title: iso || undefined, text: fmtTime(iso) });
  }

  function compactJson(value) {
    const text = JSON.stringify(value === undefined ? {} : value);
    return text === "{}" ? "" : text;
  }

  // ---------------------------------------------------------------- API

  class ApiError extends Error {
    constructor(status, code, message, details) {
      super(message);
      this.status = status;
      this.code = code;
      this.details = details || {};
    }

    describe() {
      return `${this.code}${this.status ? ` (${this.status})` : ""}: ${this.message}`;
    }
  }

  function apiUrl(path, query) {
    const url = new URL(path.replace(/^\//, ""), API_ROOT);
    for (const [key, value] of Object.entries(query || {})) {
      if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
    }
    return url;
  }

  function campaignPath(campaignId, ...rest) {
    return ["campaigns", campaignId, ...rest].map(encodeURIComponent).join("/");
  }

  async function api(method, path, { query, body, token } = {}) {
    const headers = { Accept: "application/json" };
    const bearer = token === undefined ? sessionStorage.getItem(TOKEN_KEY) : token;
    if (bearer) headers.Authorization = `Bearer ${bearer}`;
    const init = { method, headers, cache: "no-store", credentials: "omit", redirect: "error" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(apiUrl(path, query), init);
    } catch (exc) {
      throw new ApiError(0, "UNAVAILABLE", `the service did not answer (${exc.message})`);
    }
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!response.ok) {
      const error = (data && data.error) || {};
      throw new ApiError(
        response.status,
        error.code || `HTTP_${response.status}`,
        error.message || response.statusText || "request failed",
        error.details,
      );
    }
    return { status: response.status, data };
  }

  // A 401 anywhere means the token is gone (expired, revoked, malformed): back to sign-in.
  function handleAuthLoss(exc) {
    if (exc instanceof ApiError && exc.status === 401) {
      signOut(`Your token was refused: ${exc.describe()}. Sign in again.`);
      return true;
    }
    return false;
  }

  function refusal(exc, what) {
    if (!(exc instanceof ApiError)) return `${what} failed: ${exc}`;
    if (exc.status === 403) {
      return `Refused (${exc.code}): ${exc.message}. ` +
        `${what} needs a token with REPORT on this campaign (or supreme).`;
    }
    return `${what} failed: ${exc.describe()}`;
  }

  // ---------------------------------------------------------------- banner

  function notify(text, kind) {
    const banner = $("banner");
    banner.className = `banner ${kind || "info"}`;
    $("banner-text").textContent = text;
    show(banner, true);
  }

  // ---------------------------------------------------------------- sign-in

  async function signIn(token) {
    const me = await api("GET", "/me", { token });
    sessionStorage.setItem(TOKEN_KEY, token);
    state.me = me.data;
    state.generation += 1;
    showWorkspace();
  }

  function signOut(message, kind) {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(CAMPAIGN_KEY);
    stopPolling();
    state.generation += 1;
    state.me = null;
    state.campaign = null;
    state.records = [];
    state.rows.clear();
    state.detail = null;
    state.detailId = null;
    clear($("exports-body"));
    clear($("ccpa-body"));
    show($("workspace"), false);
    show($("campaign-view"), false);
    show($("ccpa-panel"), false);
    show($("identity"), false);
    show($("banner"), false);
    $("token").value = "";
    $("signin-error").className = kind === "info" ? "ok" : "error";
    setText($("signin-error"), message || "");
    show($("signin"), true);
    $("token").focus();
  }

  function showWorkspace() {
    const me = state.me;
    show($("signin"), false);
    setText($("signin-error"), "");
    $("who").textContent = me.sub;
    show($("supreme-badge"), Boolean(me.supreme));
    show($("identity"), true);
    const list = $("campaign-list");
    clear(list);
    for (const id of me.campaigns || []) list.append(el("option", { value: id }));
    let hint = "";
    if (me.supreme) hint = "supreme: any campaign id";
    else if (!(me.campaigns || []).length) hint = "this token has REPORT on no campaign";
    else hint = `REPORT on ${me.campaigns.length} campaign(s)`;
    $("campaign-hint").textContent = hint;
    show($("workspace"), true);
    show($("ccpa-panel"), Boolean(me.supreme));
    loadTypes();
    if (me.supreme) loadCcpa(false);
    const remembered = sessionStorage.getItem(CAMPAIGN_KEY);
    const initial = remembered || (me.campaigns && me.campaigns.length === 1 ? me.campaigns[0] : "");
    $("campaign").value = initial || "";
    if (initial) openCampaign(initial);
    else $("campaign").focus();
  }

  // ---------------------------------------------------------------- export types (OpenAPI)

  function resolveRef(doc, schema) {
    let current = schema || {};
    for (let depth = 0; current.$ref && depth < 10; depth += 1) {
      const ref = current.$ref;
      if (!ref.startsWith("#/")) return {};
      current = ref
        .slice(2)
        .split("/")
        .map((part) => part.replace(/~1/g, "/").replace(/~0/g, "~"))
        .reduce((node, part) => (node && typeof node === "object" ? node[part] : undefined), doc) || {};
    }
    return current;
  }

  // `anyOf: [{type: X}, {type: "null"}]` is an optional X.
  function concrete(doc, schema) {
    const resolved = resolveRef(doc, schema);
    const alternatives = resolved.anyOf || resolved.oneOf;
    if (Array.isArray(alternatives)) {
      const real = alternatives.map((s) => resolveRef(doc, s)).find((s) => s.type !== "null");
      if (real) {
        return {
          ...real,
          description: resolved.description || real.description,
          default: resolved.default ?? real.default,
        };
      }
    }
    return resolved;
  }

  function exportTypesFrom(doc) {
    const create = resolveRef(doc, { $ref: "#/components/schemas/CreateExportRequest" });
    return (create.oneOf || []).map((alt) => {
      const choice = resolveRef(doc, alt);
      const props = choice.properties || {};
      const params = concrete(doc, props.params);
      return {
        name: String((props.exportType || {}).const || ""),
        description: choice.description || "",
        properties: Object.entries(params.properties || {}).map(([name, s]) => [name, concrete(doc, s)]),
        required: new Set(params.required || []),
      };
    }).filter((t) => t.name);
  }

  async function loadTypes() {
    try {
      const { data } = await api("GET", "/openapi.json", { token: "" });
      state.types = exportTypesFrom(data);
    } catch (exc) {
      setText($("request-error"), `Could not read the export types: ${exc.describe ? exc.describe() : exc}`);
      return;
    }
    const select = $("export-type");
    clear(select);
    for (const type of state.types) select.append(el("option", { value: type.name, text: type.name }));
    const filter = $("filter-type");
    clear(filter);
    filter.append(el("option", { value: "", text: "any" }));
    for (const type of state.types) filter.append(el("option", { value: type.name, text: type.name }));
    renderParamFields();
  }

  function selectedType() {
    return state.types.find((t) => t.name === $("export-type").value);
  }

  function fieldHint(schema) {
    const parts = [];
    if (schema.description) parts.push(schema.description);
    const [min, max] = [schema.minimum, schema.maximum];
    if (min !== undefined && max !== undefined) parts.push(`${min} to ${max}`);
    else if (schema.minimum !== undefined) parts.push(`at least ${schema.minimum}`);
    else if (schema.maximum !== undefined) parts.push(`at most ${schema.maximum}`);
    if (schema.maxLength !== undefined) parts.push(`up to ${schema.maxLength} characters`);
    if (schema.default !== undefined) parts.push(`default ${JSON.stringify(schema.default)}`);
    return parts.join("; ");
  }

  function controlFor(schema, id, required) {
    if (Array.isArray(schema.enum)) {
      const select = el("select", { id });
      if (!required) select.append(el("option", { value: "", text: "(default)" }));
      for (const value of schema.enum) select.append(el("option", { value: String(value), text: String(value) }));
      return select;
    }
    if (schema.type === "boolean") {
      return el(
        "select",
        { id },
        required ? null : el("option", { value: "", text: "(default)" }),
        el("option", { value: "true", text: "true" }),
        el("option", { value: "false", text: "false" }),
      );
    }
    if (schema.type === "integer" || schema.type === "number") {
      return el("input", {
        id,
        type: "number",
        inputmode: schema.type === "integer" ? "numeric" : "decimal",
        step: schema.type === "integer" ? "1" : "any",
        min: schema.minimum,
        max: schema.maximum,
        placeholder: schema.default !== undefined ? String(schema.default) : undefined,
      });
    }
    const inputType = { date: "date", "date-time": "datetime-local" }[schema.format] || "text";
    return el("input", {
      id,
      type: inputType,
      autocomplete: "off",
      spellcheck: "false",
      placeholder: schema.default !== undefined ? String(schema.default) : undefined,
    });
  }

  function renderParamFields() {
    const container = $("param-fields");
    clear(container);
    clearRequestMessages();
    const type = selectedType();
    $("export-type-description").textContent = type ? type.description : "";
    if (!type) return;
    if (!type.properties.length) {
      container.append(el("p", { class: "muted", text: "This export type takes no parameters." }));
      return;
    }
    type.properties.forEach(([name, schema], index) => {
      const id = `param-${index}`;
      const required = type.required.has(name);
      const control = controlFor(schema, id, required);
      control.dataset.param = name;
      control.dataset.kind = schema.type || "string";
      if (schema.format) control.dataset.format = schema.format;
      control.setAttribute("aria-describedby", `${id}-hint ${id}-error`);
      if (required) control.setAttribute("aria-required", "true");
      container.append(
        el(
          "div",
          { class: "field", dataset: { param: name } },
          el(
            "label",
            { for: id },
            name,
            el("span", { class: "muted", text: required ? " (required)" : " (optional)" }),
          ),
          control,
          el("p", { id: `${id}-hint`, class: "hint", text: fieldHint(schema) }),
          el("p", { id: `${id}-error`, class: "field-error", role: "alert", hidden: true }),
        ),
      );
    });
  }

  // The server validates: values are sent as typed as the schema says, empty optional fields
  // are left out (their defaults apply), anything unparsable is sent as typed and refused.
  function collectParams() {
    const params = {};
    for (const control of $("param-fields").querySelectorAll("[data-param]:is(input, select)")) {
      const raw = control.value;
      if (raw.trim() === "") continue;
      const kind = control.dataset.kind;
      let value = raw;
      if (kind === "integer" && /^-?\d+$/.test(raw.trim())) value = Number(raw.trim());
      else if (kind === "number" && Number.isFinite(Number(raw))) value = Number(raw);
      else if (kind === "boolean") value = raw === "true";
      else if (control.dataset.format === "date-time" && !Number.isNaN(new Date(raw).getTime())) {
        value = new Date(raw).toISOString();
      }
      params[control.dataset.param] = value;
    }
    return params;
  }

  function clearRequestMessages() {
    setText($("request-error"), "");
    setText($("request-result"), "");
    for (const node of $("param-fields").querySelectorAll(".field-error")) setText(node, "");
    for (const node of $("param-fields").querySelectorAll(".field.invalid")) node.classList.remove("invalid");
  }

  function showParamErrors(exc) {
    const unplaced = [];
    const errors = Array.isArray(exc.details.errors) ? exc.details.errors : [];
    for (const error of errors) {
      const name = String(error.loc || "").split(".")[0];
      const field = [...$("param-fields").querySelectorAll(".field")].find((f) => f.dataset.param === name);
      if (!field || !name) {
        unplaced.push(`${error.loc ? `${error.loc}: ` : ""}${error.msg}`);
        continue;
      }
      field.classList.add("invalid");
      const slot = field.querySelector(".field-error");
      setText(slot, slot.textContent ? `${slot.textContent}; ${error.msg}` : String(error.msg));
    }
    const summary = `${exc.code}: ${exc.message}`;
    setText($("request-error"), unplaced.length ? `${summary} (${unplaced.join("; ")})` : summary);
  }

  async function requestExport(event) {
    event.preventDefault();
    const type = selectedType();
    if (!type || !state.campaign) return;
    clearRequestMessages();
    const button = $("request-submit");
    button.disabled = true;
    const generation = state.generation;
    try {
      const { status, data } = await api("POST", campaignPath(state.campaign, "exports"), {
        body: { exportType: type.name, params: collectParams() },
      });
      if (generation !== state.generation) return;
      setText(
        $("request-result"),
        status === 202
          ? `Requested ${data.exportType} ${data.id} (${data.status}).`
          : `An identical export requested today is still ${data.status}: ${data.id}.`,
      );
      await refreshExports();
      openDetail(data.id);
    } catch (exc) {
      if (handleAuthLoss(exc)) return;
      if (exc instanceof ApiError && exc.code === "INVALID_PARAMS") showParamErrors(exc);
      else setText($("request-error"), refusal(exc, "Requesting an export"));
    } finally {
      button.disabled = false;
    }
  }

  // ---------------------------------------------------------------- campaign and exports

  function openCampaign(campaignId) {
    stopPolling();
    state.generation += 1;
    state.campaign = campaignId;
    state.records = [];
    state.next = null;
    state.listRetry = false;
    state.rows.clear();
    clear($("exports-body"));
    closeDetail();
    clearRequestMessages();
    sessionStorage.setItem(CAMPAIGN_KEY, campaignId);
    $("campaign-title").textContent = campaignId;
    show($("campaign-view"), true);
    refreshExports();
  }

  function listQuery(limit, cursor) {
    return {
      status: $("filter-status").value,
      exportType: $("filter-type").value,
      limit: String(limit),
      cursor,
    };
  }

  // The first page again, as long as what is shown (up to the API's page limit), so that a
  // poll updates every visible row in place.
  async function refreshExports() {
    const generation = state.generation;
    const campaignId = state.campaign;
    if (!campaignId) return;
    const limit = Math.min(Math.max(state.records.length, PAGE), MAX_PAGE);
    try {
      const { data } = await api("GET", campaignPath(campaignId, "exports"), { query: listQuery(limit) });
      if (generation !== state.generation) return;
      const fresh = new Set(data.items.map((r) => r.id));
      const older = state.records.length > MAX_PAGE
        ? state.records.slice(MAX_PAGE).filter((r) => !fresh.has(r.id))
        : [];
      state.records = [...data.items, ...older];
      if (!older.length) state.next = data.next;
      state.listRetry = false;
      setText($("exports-error"), "");
      show($("exports-table"), true);
      show($("request-panel"), true);
    } catch (exc) {
      if (generation !== state.generation || handleAuthLoss(exc)) return;
      setText($("exports-error"), refusal(exc, `Listing the exports of ${campaignId}`));
      state.listRetry = exc instanceof ApiError && (exc.status === 0 || exc.status >= 502);
      if (exc instanceof ApiError && (exc.status === 403 || exc.status === 400)) {
        state.records = [];
        show($("exports-table"), false);
        show($("request-panel"), false);
      }
    }
    renderExports();
    schedulePoll();
  }

  async function loadMoreExports() {
    const generation = state.generation;
    if (!state.next) return;
    try {
      const { data } = await api("GET", campaignPath(state.campaign, "exports"), {
        query: listQuery(PAGE, state.next),
      });
      if (generation !== state.generation) return;
      const known = new Set(state.records.map((r) => r.id));
      state.records.push(...data.items.filter((r) => !known.has(r.id)));
      state.next = data.next;
    } catch (exc) {
      if (generation !== state.generation || handleAuthLoss(exc)) return;
      setText($("exports-error"), refusal(exc, "Loading more exports"));
    }
    renderExports();
  }

  function progressOf(record) {
    const rows = typeof record.rowCount === "number" ? record.rowCount : 0;
    const total = record.totalCount;
    if (record.status === "PENDING") return { fraction: null, text: "queued", indeterminate: false };
    if (record.status === "FINISHED") {
      const skipped = record.skippedCount ? `, ${fmtInt(record.skippedCount)} skipped` : "";
      return { fraction: 1, text: `${fmtInt(rows)} rows${skipped}` };
    }
    if (typeof total !== "number" || total <= 0) {
      return { fraction: null, text: `${fmtInt(rows)} rows`, indeterminate: record.status === "TRIGGERED" };
    }
    // Rows are not the unit of work (an entry in two markets gives two rows): the share
    // done comes from the service's own estimate of the time left, as the CLI's bar does,
    // and from rows over the preliminary count only until there is an estimate.
    let fraction = Math.min(rows / total, 1);
    const rate = record.rowsPerSecond;
    const eta = record.etaSeconds;
    if (typeof rate === "number" && rate > 0 && typeof eta === "number") {
      const ran = rows / rate;
      if (ran + eta > 0) fraction = Math.min(ran / (ran + eta), 1);
    }
    const percent = Math.floor(fraction * 100);
    return { fraction, text: `${fmtInt(rows)} rows of ${fmtInt(total)} documents (${percent}%)` };
  }

  function rateOf(record) {
    if (record.status === "TRIGGERED") {
      const rate = typeof record.rowsPerSecond === "number"
        ? `${fmtInt(record.rowsPerSecond)} rows/s`
        : "starting";
      const eta = typeof record.etaSeconds === "number" ? ` · ETA ${fmtDuration(record.etaSeconds)}` : "";
      return rate + eta;
    }
    if (record.triggeredAt && record.finishedAt) {
      const took = (new Date(record.finishedAt) - new Date(record.triggeredAt)) / 1000;
      return `${record.status === "FINISHED" ? "took" : "ran"} ${fmtDuration(took)}`;
    }
    return "";
  }

  function progressBar(progress) {
    const bar = el("progress", { max: "1" });
    if (progress.fraction !== null) bar.value = progress.fraction;
    else if (!progress.indeterminate) bar.value = 0;
    return bar;
  }

  function statusBadge(status) {
    return el("span", { class: `badge status status-${String(status).toLowerCase()}`, text: status });
  }

  function buildRow(id) {
    const cells = {
      created: el("td", { class: "created" }),
      type: el("td", { class: "type" }),
      status: el("td", { class: "status-cell" }),
      progress: el("td", { class: "progress-cell" }),
      rate: el("td", { class: "rate" }),
      actions: el("td", { class: "actions" }),
    };
    const details = el("button", { type: "button", class: "secondary small details", text: "Details" });
    details.addEventListener("click", () => openDetail(id));
    const cancel = el("button", { type: "button", class: "danger small cancel", text: "Cancel" });
    cancel.addEventListener("click", () => cancelExport(id));
    cells.actions.append(details, cancel);
    const tr = el("tr", { dataset: { exportId: id } }, ...Object.values(cells));
    return { tr, cells, cancel };
  }

  function updateRow(row, record) {
    const { cells } = row;
    row.tr.dataset.status = record.status;
    row.tr.classList.toggle("selected", record.id === state.detailId);
    fill(cells.created, timeEl(record.createdAt));
    const params = compactJson(record.params);
    fill(
      cells.type,
      el("span", { class: "type-name", text: record.exportType }),
      params ? el("code", { class: "params", text: params }) : null,
    );
    fill(
      cells.status,
      statusBadge(record.status),
      record.error
        ? el("span", { class: "error-code", title: record.error.message, text: record.error.code })
        : null,
    );
    const progress = progressOf(record);
    fill(cells.progress, progressBar(progress), el("span", { class: "progress-text", text: progress.text }));
    cells.rate.textContent = rateOf(record);
    show(row.cancel, ACTIVE.has(record.status));
  }

  function renderExports() {
    const body = $("exports-body");
    const seen = new Set();
    for (const record of state.records) {
      let row = state.rows.get(record.id);
      if (!row) {
        row = buildRow(record.id);
        state.rows.set(record.id, row);
      }
      updateRow(row, record);
      body.append(row.tr); // keeps the row element (and any focus on its buttons), in order
      seen.add(record.id);
    }
    for (const [id, row] of state.rows) {
      if (!seen.has(id)) {
        row.tr.remove();
        state.rows.delete(id);
      }
    }
    show($("exports-empty"), !state.records.length && $("exports-error").hidden);
    show($("exports-more"), Boolean(state.next));
  }

  async function cancelExport(id) {
    const record = state.records.find((r) => r.id === id) || state.detail;
    const label = record ? `${record.exportType} ${id}` : id;
    if (!window.confirm(`Cancel export ${label}?`)) return;
    const generation = state.generation;
    try {
      const { data } = await api("DELETE", campaignPath(state.campaign, "exports", id));
      if (generation !== state.generation) return;
      notify(`Export ${data.id} is ${data.status}.`, "info");
    } catch (exc) {
      if (handleAuthLoss(exc)) return;
      if (exc instanceof ApiError && exc.code === "EXPORT_NOT_CANCELLABLE") {
        notify(`Export ${id} could not be cancelled: ${exc.message}.`, "error");
      } else {
        notify(refusal(exc, "Cancelling the export"), "error");
      }
    }
    await refreshExports();
    if (state.detailId === id) await refreshDetail();
  }

  // ---------------------------------------------------------------- one export

  function openDetail(id) {
    state.detailId = id;
    state.detail = null;
    $("detail-id").textContent = id;
    clear($("detail-fields"));
    clear($("detail-objects-body"));
    setText($("detail-error"), "");
    show($("detail-panel"), true);
    for (const [rowId, row] of state.rows) row.tr.classList.toggle("selected", rowId === id);
    refreshDetail().then(() => schedulePoll());
  }

  function closeDetail() {
    state.detailId = null;
    state.detail = null;
    show($("detail-panel"), false);
    for (const row of state.rows.values()) row.tr.classList.remove("selected");
  }

  async function refreshDetail() {
    const id = state.detailId;
    const generation = state.generation;
    if (!id) return;
    try {
      const { data } = await api("GET", campaignPath(state.campaign, "exports", id));
      if (generation !== state.generation || state.detailId !== id) return;
      state.detail = data;
      setText($("detail-error"), "");
      renderDetail(data);
    } catch (exc) {
      if (generation !== state.generation || handleAuthLoss(exc)) return;
      setText($("detail-error"), refusal(exc, "Reading the export"));
    }
  }

  function detailRows(record) {
    const progress = progressOf(record);
    return [
      ["Type", record.exportType],
      ["Status", statusBadge(record.status)],
      ["Params", compactJson(record.params) || "none"],
      ["Progress", el("span", {}, progressBar(progress), " ", progress.text)],
      ["Rate / ETA", rateOf(record) || "–"],
      [
        "Requested",
        el("span", {}, timeEl(record.createdAt), ` by ${record.requestedBy || "?"} via ${record.source || "?"}`),
      ],
      ["Triggered", timeEl(record.triggeredAt)],
      ["Finished", timeEl(record.finishedAt)],
      ["Preliminary count", fmtInt(record.totalCount)],
      ["Rows / skipped", `${fmtInt(record.rowCount)} / ${fmtInt(record.skippedCount)}`],
      ["Bucket", record.bucket || "–"],
      // The trace that follows the export (OpenTelemetry): to look up in the tracing UI.
      ["Trace id", el("code", { text: record.traceId || "–" })],
      record.error ? ["Error", `${record.error.code}: ${record.error.message}`] : null,
      record.deletedAt
        ? ["Deleted", el("span", {}, timeEl(record.deletedAt), ` by ${record.deletedBy || "?"}`)]
        : null,
    ].filter(Boolean);
  }

  function safeHttpUrl(raw) {
    try {
      const url = new URL(raw);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch {
      return null;
    }
  }

  function renderDetail(record) {
    const fields = $("detail-fields");
    clear(fields);
    for (const [name, value] of detailRows(record)) {
      fields.append(el("dt", { text: name }), el("dd", {}, value));
    }
    const urls = new Map((record.downloadUrls || []).map((d) => [d.key, d.url]));
    const body = $("detail-objects-body");
    clear(body);
    for (const obj of record.objects || []) {
      const href = urls.has(obj.key) ? safeHttpUrl(urls.get(obj.key)) : null;
      const link = href
        ? el("a", {
            href,
            class: "download",
            target: "_blank",
            rel: "noopener noreferrer",
            dataset: { key: obj.key },
            text: "Download",
          })
        : el("span", { class: "muted", text: record.status === "DELETED" ? "deleted" : "–" });
      body.append(
        el(
          "tr",
          { dataset: { key: obj.key } },
          el("td", {}, el("code", { class: "key", text: obj.key })),
          el("td", { title: `${obj.size} bytes`, text: fmtBytes(obj.size) }),
          el("td", {}, el("code", { class: "sha", text: obj.sha256 })),
          el("td", {}, link),
        ),
      );
    }
    const hasObjects = Boolean((record.objects || []).length);
    show($("detail-objects"), hasObjects);
    show($("detail-no-objects"), !hasObjects);
    show($("detail-cancel"), ACTIVE.has(record.status));
  }

  // ---------------------------------------------------------------- CCPA (supreme only)

  function ccpaOutcome(request) {
    if (request.error) return `${request.error.code}: ${request.error.message}`;
    const summary = request.summary;
    if (!summary) return "";
    const deleted = (summary.deleted || []).length;
    const exempt = (summary.exempt || []).length;
    return `${fmtInt(deleted)} export(s) deleted (${fmtInt(summary.deletedObjectCount)} objects), ` +
      `${fmtInt(exempt)} kept as exempt, ${fmtInt((summary.campaignIds || []).length)} campaign(s)`;
  }

  function renderCcpa() {
    const body = $("ccpa-body");
    clear(body);
    for (const request of state.ccpa) {
      body.append(
        el(
          "tr",
          { dataset: { requestId: request.requestId } },
          el("td", {}, timeEl(request.createdAt)),
          el("td", {}, el("code", { text: request.requestId })),
          el("td", {}, el("code", { text: request.userId })),
          el("td", {}, statusBadge(request.status)),
          el("td", { text: ccpaOutcome(request) }),
        ),
      );
    }
    show($("ccpa-empty"), !state.ccpa.length && $("ccpa-error").hidden);
    show($("ccpa-more"), Boolean(state.ccpaNext));
  }

  async function loadCcpa(more) {
    const generation = state.generation;
    try {
      const query = { limit: String(more ? PAGE : Math.min(Math.max(state.ccpa.length, PAGE), MAX_PAGE)) };
      if (more) query.cursor = state.ccpaNext;
      const { data } = await api("GET", "/ccpa/requests", { query });
      if (generation !== state.generation) return;
      state.ccpa = more ? [...state.ccpa, ...data.items] : data.items;
      state.ccpaNext = data.next;
      setText($("ccpa-error"), "");
    } catch (exc) {
      if (generation !== state.generation || handleAuthLoss(exc)) return;
      setText($("ccpa-error"), `Listing CCPA requests failed: ${exc.describe ? exc.describe() : exc}`);
    }
    renderCcpa();
    schedulePoll();
  }

  // ---------------------------------------------------------------- live updates

  function needsPolling() {
    const exportsActive = state.records.some((r) => ACTIVE.has(r.status));
    const detailActive = Boolean(state.detail && ACTIVE.has(state.detail.status));
    const ccpaActive = state.ccpa.some((r) => CCPA_ACTIVE.has(r.status));
    return Boolean(state.me) && (exportsActive || detailActive || ccpaActive || state.listRetry);
  }

  function stopPolling() {
    clearTimeout(state.timer);
    state.timer = null;
    show($("live"), false);
  }

  // While anything shown is still moving, poll every POLL_MS; stop once all is terminal.
  function schedulePoll() {
    clearTimeout(state.timer);
    state.timer = null;
    const exportsLive = state.records.some((r) => ACTIVE.has(r.status)) ||
      Boolean(state.detail && ACTIVE.has(state.detail.status));
    show($("live"), Boolean(state.me) && exportsLive);
    if (!needsPolling()) return;
    state.timer = setTimeout(poll, POLL_MS);
  }

  async function poll() {
    state.timer = null;
    const detailWasActive = Boolean(state.detail && ACTIVE.has(state.detail.status));
    const tasks = [];
    if (state.campaign && (state.listRetry || state.records.some((r) => ACTIVE.has(r.status)))) {
      tasks.push(refreshExports());
    }
    if (state.detailId && detailWasActive) tasks.push(refreshDetail());
    if (state.me && state.me.supreme && state.ccpa.some((r) => CCPA_ACTIVE.has(r.status))) {
      tasks.push(loadCcpa(false));
    }
    await Promise.all(tasks);
    // The list may have seen the open export end first: read it once more for its links.
    const listed = state.records.find((r) => r.id === state.detailId);
    if (listed && state.detail && listed.status !== state.detail.status) await refreshDetail();
    schedulePoll();
  }

  // ---------------------------------------------------------------- wiring

  function init() {
    const statusFilter = $("filter-status");
    statusFilter.append(el("option", { value: "", text: "any" }));
    for (const status of STATUSES) statusFilter.append(el("option", { value: status, text: status }));

    $("signin-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const token = $("token").value.trim().replace(/^Bearer\s+/i, "");
      if (!token) {
        setText($("signin-error"), "Paste a token first.");
        return;
      }
      $("signin-submit").disabled = true;
      try {
        await signIn(token);
      } catch (exc) {
        sessionStorage.removeItem(TOKEN_KEY);
        $("signin-error").className = "error";
        setText($("signin-error"), `Sign-in refused: ${exc.describe ? exc.describe() : exc}`);
      } finally {
        $("signin-submit").disabled = false;
      }
    });
    $("sign-out").addEventListener("click", () => signOut("Signed out.", "info"));
    $("banner-close").addEventListener("click", () => show($("banner"), false));
    $("campaign-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const campaignId = $("campaign").value.trim();
      if (campaignId) openCampaign(campaignId);
    });
    for (const id of ["filter-status", "filter-type"]) {
      $(id).addEventListener("change", () => {
        state.records = [];
        state.next = null;
        refreshExports();
      });
    }
    $("exports-refresh").addEventListener("click", () => refreshExports());
    $("exports-more").addEventListener("click", () => loadMoreExports());
    $("export-type").addEventListener("change", renderParamFields);
    $("request-form").addEventListener("submit", requestExport);
    $("detail-close").addEventListener("click", closeDetail);
    $("detail-cancel").addEventListener("click", () => state.detailId && cancelExport(state.detailId));
    $("ccpa-refresh").addEventListener("click", () => loadCcpa(false));
    $("ccpa-more").addEventListener("click", () => loadCcpa(true));

    const token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) {
      signOut("");
      return;
    }
    api("GET", "/me")
      .then(({ data }) => {
        state.me = data;
        showWorkspace();
      })
      .catch((exc) => signOut(`Your token was refused: ${exc.describe ? exc.describe() : exc}`));
  }

  document.addEventListener("DOMContentLoaded", init);
})();
