// The live market page: instruments from GET /v1/instruments, market data over /v1/stream,
// and a demo order ticket that signs POST /v1/orders with the key from the URL fragment.
// Prices and quantities stay decimal strings; Number() is used only to scale bars and the chart.
import { importSecret, newNonce, signedHeaders, streamQuery } from "/assets/sign.js";

const $ = (id) => document.getElementById(id);
const MAX_TRADES = 50;
const MAX_CANDLES = 120;
const MAX_NOTES = 100;

const state = {
  symbol: null,
  interval: "1s",
  ws: null,
  subscribed: [],
  candles: new Map(), // bucket_start -> candle
  key: null, // { id, crypto key }
  retry: 500,
};

function fragment() {
  const p = new URLSearchParams(location.hash.replace(/^#/, ""));
  return { key: p.get("key"), secret: p.get("secret"), symbol: p.get("symbol") };
}

function setStatus(kind, text) {
  const el = $("status");
  el.className = `status ${kind}`;
  el.dataset.state = kind;
  el.textContent = text;
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

// ---- stream --------------------------------------------------------------------------------

function channels() {
  const s = state.symbol;
  const list = [`book:${s}`, `trades:${s}`, `candles:${s}:${state.interval}`];
  if (state.key) list.push("notifications");
  return list;
}

function send(obj) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(obj));
}

function resubscribe() {
  if (state.subscribed.length) send({ op: "unsubscribe", channels: state.subscribed });
  clearMarket();
  state.subscribed = channels();
  send({ op: "subscribe", channels: state.subscribed });
}

async function connect() {
  setStatus("connecting", "connecting…");
  let query = "";
  if (state.key) {
    try {
      query = "?" + (await streamQuery(state.key.crypto, state.key.id));
    } catch (e) {
      setStatus("error", `cannot sign: ${e.message}`);
    }
  }
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${proto}//${location.host}/v1/stream${query}`);
  state.ws = ws;
  ws.onopen = () => {
    state.retry = 500;
    setStatus("live", "live");
    state.subscribed = [];
    resubscribe();
  };
  ws.onmessage = (ev) => {
    let msg;
    try { msg = JSON.parse(ev.data); } catch { return; }
    onMessage(msg);
  };
  ws.onclose = (ev) => {
    const why = ev.reason ? ` (${ev.code} ${ev.reason})` : ` (${ev.code})`;
    setStatus("closed", `disconnected${why}; retrying`);
    state.ws = null;
    setTimeout(connect, state.retry);
    state.retry = Math.min(state.retry * 2, 10000);
  };
}

function onMessage(msg) {
  if (msg.error) {
    addNote({ kind: "error", text: `${msg.error.code}: ${msg.error.message}` });
    return;
  }
  if (!msg.channel) return;
  const [kind, symbol] = msg.channel.split(":");
  if (kind === "notifications") return [].concat(msg.data).forEach(addNote);
  if (symbol !== state.symbol) return;
  if (kind === "book") renderBook(msg.data);
  else if (kind === "trades") [].concat(msg.data).forEach(addTrade);
  else if (kind === "candles" && msg.data.interval === state.interval) addCandle(msg.data);
}

// ---- book, trades, candles ------------------------------------------------------------------

function clearMarket() {
  $("asks").replaceChildren();
  $("bids").replaceChildren();
  $("trades").replaceChildren();
  state.lastTradeSeq = undefined;
  $("spread-cell").textContent = "–";
  $("top").textContent = "";
  $("last").textContent = "";
  state.candles.clear();
  drawChart();
}

function ladderRows(levels, max) {
  return levels.map((l) => {
    const bar = el("div", { class: "bar" });
    bar.style.width = `${Math.round((100 * Number(l.qty)) / max)}%`; // CSSOM: allowed by the CSP
    const size = el("td", {}, bar, el("span", {}, l.qty));
    return el("tr", { class: "level" }, el("td", {}, el("span", {}, l.price)), size);
  });
}

function renderBook(b) {
  const max = Math.max(1e-18, ...b.bids.map((l) => Number(l.qty)), ...b.asks.map((l) => Number(l.qty)));
  $("asks").replaceChildren(...ladderRows([...b.asks].reverse(), max));
  $("bids").replaceChildren(...ladderRows(b.bids, max));
  const bid = b.bid ? b.bid.price : "–";
  const ask = b.ask ? b.ask.price : "–";
  $("spread-cell").textContent = `bid ${bid} · ask ${ask}`;
  $("top").textContent = b.bid && b.ask ? `spread ${spread(b.bid.price, b.ask.price)}` : "";
}

// ask − bid of two decimal strings, exactly (no float noise): both scaled to the longer
// fraction and subtracted as integers.
function spread(bid, ask) {
  const frac = (s) => (s.split(".")[1] || "").length;
  const places = Math.max(frac(bid), frac(ask));
  const units = (s) => BigInt(s.replace(".", "") + "0".repeat(places - frac(s)));
  const d = units(ask) - units(bid);
  const neg = d < 0n;
  const digits = (neg ? -d : d).toString().padStart(places + 1, "0");
  const text = places ? `${digits.slice(0, -places)}.${digits.slice(-places)}` : digits;
  return neg ? `-${text}` : text;
}

function addTrade(t) {
  // Each trade once, in order: a trade at or below the last seq shown is not shown again.
  if (typeof t.seq === "number" && state.lastTradeSeq !== undefined && t.seq <= state.lastTradeSeq) return;
  if (typeof t.seq === "number") state.lastTradeSeq = t.seq;
  const time = new Date(t.ts).toISOString().slice(11, 23);
  const row = el("tr", { class: t.taker_side }, el("td", {}, time), el("td", {}, t.price), el("td", {}, t.qty));
  const body = $("trades");
  body.prepend(row);
  while (body.children.length > MAX_TRADES) body.lastElementChild.remove();
  $("last").textContent = `last ${t.price}`;
}

function addCandle(c) {
  state.candles.set(c.bucket_start, c);
  if (state.candles.size > MAX_CANDLES) {
    const oldest = Math.min(...state.candles.keys());
    state.candles.delete(oldest);
  }
  drawChart();
}

function drawChart() {
  const canvas = $("chart");
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 640;
  const h = canvas.clientHeight || 320;
  canvas.width = w * ratio;
  canvas.height = h * ratio;
  const g = canvas.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.fillStyle = "#0b1016";
  g.fillRect(0, 0, w, h);
  const candles = [...state.candles.values()].sort((a, b) => a.bucket_start - b.bucket_start);
  canvas.dataset.candles = String(candles.length);
  g.fillStyle = "#7d8a99";
  g.font = "12px system-ui";
  if (!candles.length) {
    g.fillText("waiting for candles…", 12, 20);
    return;
  }
  const lo = Math.min(...candles.map((c) => Number(c.low)));
  const hi = Math.max(...candles.map((c) => Number(c.high)));
  const pad = (hi - lo) * 0.05 || Math.abs(hi) * 0.001 || 1;
  const [min, max] = [lo - pad, hi + pad];
  const axis = 64;
  const y = (v) => 8 + ((max - Number(v)) / (max - min)) * (h - 16);
  const step = (w - axis - 8) / Math.max(candles.length, 30);
  candles.forEach((c, i) => {
    const x = 8 + i * step + step / 2;
    const up = Number(c.close) >= Number(c.open);
    g.strokeStyle = g.fillStyle = up ? "#2fbf71" : "#e5534b";
    g.beginPath();
    g.moveTo(x, y(c.high));
    g.lineTo(x, y(c.low));
    g.stroke();
    const top = y(up ? c.close : c.open);
    const bottom = y(up ? c.open : c.close);
    g.fillRect(x - step * 0.35, top, step * 0.7, Math.max(1, bottom - top));
  });
  g.fillStyle = "#7d8a99";
  g.fillText(candles[candles.length - 1].close, w - axis + 4, y(candles[candles.length - 1].close) + 4);
  g.fillText(String(hi), w - axis + 4, 16);
  g.fillText(String(lo), w - axis + 4, h - 6);
}

// ---- notifications and the ticket ------------------------------------------------------------

function addNote(n) {
  const time = n.ts ? new Date(n.ts).toISOString().slice(11, 19) : "";
  const li = el("li", { class: n.kind }, el("span", { class: "kind" }, n.kind), `${time} ${n.symbol || ""} ${n.order_id || ""} ${n.text || ""}`);
  const list = $("notifications");
  list.prepend(li);
  while (list.children.length > MAX_NOTES) list.lastElementChild.remove();
}

async function placeOrder(ev) {
  ev.preventDefault();
  const out = $("t-result");
  if (!state.key) {
    out.textContent = "no key: open the page with #key=…&secret=…";
    return;
  }
  const order = {
    order_id: `web-${newNonce().slice(0, 12)}`,
    symbol: state.symbol,
    side: $("t-side").value,
    order_type: $("t-type").value,
    qty: $("t-qty").value.trim(),
    tif: $("t-tif").value,
  };
  if (order.order_type === "limit") order.price = $("t-price").value.trim();
  if ($("t-post-only").checked) order.post_only = true;
  const body = JSON.stringify(order);
  try {
    const headers = await signedHeaders(state.key.crypto, state.key.id, "POST", "/v1/orders", body);
    const res = await fetch("/v1/orders", {
      method: "POST",
      headers: { "Content-Type": "application/json", "Idempotency-Key": order.order_id, ...headers },
      body,
    });
    const answer = await res.json().catch(() => ({}));
    out.dataset.orderId = order.order_id;
    out.dataset.status = String(res.status);
    out.textContent = res.ok
      ? `${order.order_id}: accepted by the broker (${res.status}, partition ${answer.partition}, offset ${answer.offset})`
      : `${order.order_id}: ${res.status} ${answer.error ? `${answer.error.code}: ${answer.error.message}` : ""}`;
  } catch (e) {
    out.textContent = `${order.order_id}: ${e.message}`;
  }
}

// ---- start -----------------------------------------------------------------------------------

async function start() {
  const f = fragment();
  if (f.key && f.secret) {
    try {
      state.key = { id: f.key, crypto: await importSecret(f.secret) };
      $("account").textContent = `key ${f.key}`;
    } catch (e) {
      $("account").textContent = `bad key in the URL fragment: ${e.message}`;
    }
  }
  $("ticket").addEventListener("submit", placeOrder);
  $("interval").addEventListener("change", () => { state.interval = $("interval").value; resubscribe(); });
  $("symbol").addEventListener("change", () => { state.symbol = $("symbol").value; resubscribe(); });
  let list = [];
  try {
    list = (await (await fetch("/v1/instruments")).json()).instruments;
  } catch (e) {
    setStatus("error", `cannot load instruments: ${e.message}`);
  }
  const select = $("symbol");
  select.replaceChildren(...list.map((i) => el("option", { value: i.symbol }, i.symbol)));
  state.symbol = list.some((i) => i.symbol === f.symbol) ? f.symbol : list.length ? list[0].symbol : null;
  if (state.symbol) select.value = state.symbol;
  drawChart();
  connect();
}

start();
