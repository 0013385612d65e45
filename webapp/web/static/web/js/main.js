// The offers page: filters and paging through the REST API (one request per action), rows updated
// in place from the live feed, a ticker of changes and anomalies, charts, and the API key form.
// The first view is rendered by the server; without JavaScript the form and pager still work.
import { apiKey, ApiError, get, reportQuota } from "./api.js";
import { draw } from "./chart.js";
import { follow } from "./feed.js";
import { age, clock, decimal, machine, percent, pricing, usd } from "./format.js";

const config = JSON.parse(document.getElementById("page-config").textContent);
const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];
const form = $("#filters"), rows = $("#offers tbody"), status = $("#status");
const TICKER_SIZE = 30;

// --- offers table -------------------------------------------------------------------------------

function fill(row, o) {
  row.dataset.provider = o.provider;
  row.dataset.offerId = o.offer_id;
  const set = (field, text) => { $(`[data-field="${field}"]`, row).textContent = text; };
  set("provider", o.provider);
  set("gpu", `${o.gpu_count}× ${o.gpu_model}${o.gpu_form_factor ? ` ${o.gpu_form_factor}` : ""}`);
  set("memory", `${decimal(o.gpu_memory_gb)} GB`);
  set("machine", machine(o));
  set("region", `${o.region}${o.country ? ` (${o.country})` : ""}`);
  set("price_per_hour", usd(o.price_per_hour));
  set("price_per_gpu", usd(o.price_per_gpu));
  set("spot_price", usd(o.spot_price));
  set("pricing", pricing(o, config.labels.pricing_type));
  set("interconnect", config.labels.interconnect[o.interconnect] ?? "");
  set("availability", o.availability);
  set("label", `${o.provider} ${o.offer_id}`);
  $('[data-field="age"]', row).setAttribute("datetime", o.observed_at);
  set("age", age(o.data_age_seconds));
  const badges = $(`#provider-${CSS.escape(o.provider)} [data-badges]`);
  if (badges) $('[data-field="provider"]', row).after(" ", badges.cloneNode(true));
  return row;
}

const newRow = (offer) => fill($("#row-template").content.firstElementChild.cloneNode(true), offer);
const rowOf = (provider, offerId) => $(`tr[data-provider="${CSS.escape(provider)}"][data-offer-id="${CSS.escape(offerId)}"]`, rows);

function formParams(page) {
  const params = {};
  for (const [name, value] of new FormData(form)) if (value !== "") (params[name] ??= []).push(value);
  params.page = [String(page)];
  return params;
}

const queryString = (params) => new URLSearchParams(Object.entries(params).flatMap(([k, vs]) => vs.map((v) => [k, v]))).toString();

function explain(error) {
  if (!(error instanceof ApiError)) throw error;
  if (error.status === 429) {
    return `The rate limit of your plan is reached: try again in ${error.retryAfter ?? 60} s. An API key raises the limit.`;
  }
  if (error.status === 401) return "The API key stored in this browser is unknown or revoked: forget it or save another.";
  return error.message;
}

function showPage(page) {
  rows.replaceChildren(...page.items.map(newRow));
  const shown = page.items.length;
  status.textContent = `${page.total} offer${page.total === 1 ? "" : "s"}${page.total > shown ? `, showing ${shown} (page ${page.page})` : ""}.`;
  $("#warnings").replaceChildren(...page.warnings.map((w) => Object.assign(document.createElement("li"), { textContent: w })));
  const pager = $(".pager");
  pager.replaceChildren();
  const link = (to, text) => pager.append(Object.assign(document.createElement("a"), { textContent: text, href: `?${queryString(formParams(to))}`, dataset: { page: to } }));
  if (page.page > 1) link(page.page - 1, "Previous page");
  if (page.has_next) link(page.page + 1, "Next page");
}

async function search(page) {
  const params = formParams(page);
  status.textContent = "Loading offers…";
  for (const invalid of $$("[aria-invalid]", form)) invalid.removeAttribute("aria-invalid");
  try {
    showPage(await get(config.api, "/offers", params));
    history.pushState(null, "", `?${queryString(params)}`);
  } catch (error) {
    status.textContent = explain(error);
    for (const name of (error.message.match(/\b[a-z_]+(?=:)/g) || [])) form.elements[name]?.setAttribute?.("aria-invalid", "true");
  }
}

form.addEventListener("submit", (event) => { event.preventDefault(); search(1); });
$(".pager").addEventListener("click", (event) => {
  const link = event.target.closest("a[data-page]");
  if (link) { event.preventDefault(); search(Number(link.dataset.page)); }
});
addEventListener("popstate", () => location.reload()); // the server renders any filter state, at no API cost

setInterval(() => {
  for (const time of $$('time[data-field="age"]', rows)) {
    const at = Date.parse(time.getAttribute("datetime"));
    if (at) time.textContent = age((Date.now() - at) / 1000);
  }
}, 30000);

// --- live feed ----------------------------------------------------------------------------------
// Ticker entries are built from DOM nodes and text: whatever an event's strings hold (quotes,
// markup), they are shown as text and never parsed as HTML.
function element(tag, text, attributes = {}) {
  const node = document.createElement(tag);
  node.textContent = String(text);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return node;
}

const when = (iso) => element("time", clock(iso), { datetime: iso });
const bold = (text) => element("b", text);

function tick(className, ...parts) {
  const item = Object.assign(document.createElement("li"), { className });
  item.append(...parts); // strings become text nodes
  const ticker = $("#ticker");
  ticker.prepend(item);
  while (ticker.children.length > TICKER_SIZE) ticker.lastElementChild.remove();
}

const DIRECTIONS = ["up", "down"];

const handlers = {
  price_update(change) {
    const row = rowOf(change.provider, change.offer_id);
    if (row) {
      $('[data-field="price_per_hour"]', row).textContent = usd(change.new_price);
      $('[data-field="price_per_gpu"]', row).textContent = usd(change.price_per_gpu);
      $('[data-field="age"]', row).setAttribute("datetime", change.observed_at);
      $('[data-field="age"]', row).textContent = age((Date.now() - Date.parse(change.observed_at)) / 1000);
      row.classList.remove("changed-up", "changed-down");
      void row.offsetWidth; // restart the highlight
      if (DIRECTIONS.includes(change.direction)) row.classList.add(`changed-${change.direction}`);
    }
    tick(change.direction, when(change.observed_at), " ", bold(change.provider), ` ${change.gpu_count}× ${change.gpu} (${change.region}): `
      + `${usd(change.old_price)} → ${usd(change.new_price)} per hour (${percent(change.change_percent)})`);
  },
  anomaly_alert(a) {
    tick("anomaly", when(a.observed_at), ` Anomaly (${a.reason}): `, bold(a.provider), ` ${a.gpu} ${usd(a.price_per_gpu)}/GPU-hour`
      + (a.old_price != null ? `, was ${usd(a.old_price)} per hour` : ""));
  },
  availability_update(change) {
    const row = rowOf(change.provider, change.offer_id);
    if (row) $('[data-field="availability"]', row).textContent = change.availability;
  },
  health_update(event) {
    for (const badges of $$(`[data-provider="${CSS.escape(event.provider)}"] [data-badges]`)) {
      if (event.event_type === "quarantine") {
        Object.assign($("[data-stale]", badges), { hidden: false, title: event.reason || "latest batch quarantined" });
      } else if (event.event_type === "health_score") {
        $("[data-health]", badges).title = `health score ${event.score} (the last 15 minutes)`;
      } else {
        Object.assign($("[data-health]", badges), { textContent: event.status });
        $("[data-health]", badges).dataset.health = event.status;
      }
    }
    if (event.event_type === "quarantine") tick("anomaly", when(event.timestamp), " ", bold(event.provider), ": latest batch quarantined");
  },
};

const feedState = $("#feed-state");
const feed = follow({
  url: config.ws,
  channels: ["price_updates", "health_status", "availability"],
  onEvent: (event) => handlers[event.type]?.(event),
  onState: (state, seconds) => {
    feedState.textContent = { connecting: "Live feed: connecting…", live: "Live feed: on", reconnecting: `Live feed: reconnecting in ${seconds} s` }[state];
    document.body.dataset.feed = state;
  },
  onGap: () => { feedState.textContent = "Live feed: on (some changes were missed: search again to refresh)"; },
});

// --- charts -------------------------------------------------------------------------------------
const moment = (ms) => new Date(ms).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
const span = (points) => `${moment(points[0][0])} to ${moment(points.at(-1)[0])}`;
const axisUsd = (value, digits) => `$${value.toFixed(Math.min(4, Math.max(2, digits)))}`;

async function showHistory(row) {
  const { provider, offerId } = row.dataset;
  const caption = $("#history-caption");
  caption.textContent = `Loading the price history of ${provider} ${offerId}…`;
  try {
    const history = await get(config.api, `/offers/${encodeURIComponent(provider)}/${encodeURIComponent(offerId)}/history`);
    const points = history.items.map((p) => [Date.parse(p.observed_at), p.price_per_hour]);
    if (!points.length) { caption.textContent = `${provider} ${offerId}: no prices recorded yet.`; return; }
    const prices = points.map((p) => p[1]);
    draw($("#history-chart"), { series: [{ name: "price_per_hour", points: [...points, [Date.now(), prices.at(-1)]], step: true }], format: axisUsd });
    caption.textContent = `${provider} ${offerId} (${$('[data-field="gpu"]', row).textContent}), USD per hour: ${points.length} price${points.length === 1 ? "" : "s"} from ${span(points)}; lowest ${usd(Math.min(...prices))}, highest ${usd(Math.max(...prices))}, now ${usd(prices.at(-1))}.`;
  } catch (error) {
    caption.textContent = explain(error);
  }
  $("#history-title").focus();
}

async function showStats(gpu) {
  const caption = $("#stats-caption");
  caption.textContent = `Loading 24 hours of ${gpu}…`;
  try {
    const stats = await get(config.api, `/gpus/${encodeURIComponent(gpu)}/stats`, { window: "24h" });
    const at = (w) => Date.parse(w.window_start);
    const series = stats.series;
    if (!series.length) { caption.textContent = `${gpu}: no observations in the last 24 hours.`; return; }
    draw($("#stats-chart"), {
      band: series.map((w) => [at(w), w.min_price_per_gpu, w.max_price_per_gpu]),
      series: [{ name: "avg", points: series.map((w) => [at(w), w.avg_price_per_gpu]) }],
      format: axisUsd,
    });
    const lows = series.map((w) => w.min_price_per_gpu), highs = series.map((w) => w.max_price_per_gpu);
    caption.textContent = `${gpu}, USD per GPU-hour, ${series.length} one-minute windows from ${span(series.map((w) => [at(w)]))}: line the average, band lowest to highest (${usd(Math.min(...lows))} to ${usd(Math.max(...highs))}).`;
  } catch (error) {
    caption.textContent = explain(error);
  }
  $("#stats-title").focus();
}

rows.addEventListener("click", (event) => {
  const button = event.target.closest("[data-history]");
  if (button) showHistory(button.closest("tr"));
});
$("#gpus").addEventListener("click", (event) => {
  const button = event.target.closest("[data-stats]");
  if (button) showStats(button.dataset.stats);
});

// --- API key ------------------------------------------------------------------------------------
const keyState = $("#key-state"), quota = $("#quota");
const describeKey = () => {
  const key = apiKey.get();
  keyState.textContent = key
    ? `A key (${key.slice(0, 8)}…) is stored in this browser and sent with every request.`
    : "Without a key this page uses the free plan: 10 API requests a minute from your address. A saved key stays in this browser (localStorage) and is sent only to this site.";
};
reportQuota(({ limit, remaining }) => { quota.textContent = `${remaining} of ${limit} API requests left this minute.`; });
$("#key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $("#api-key");
  if (!input.value.trim()) { input.focus(); return; }
  apiKey.set(input.value.trim());
  input.value = "";
  describeKey();
  feed.restart();
});
$("#key-forget").addEventListener("click", () => { apiKey.clear(); describeKey(); feed.restart(); });
describeKey();
