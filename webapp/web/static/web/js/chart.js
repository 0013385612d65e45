// Line charts in SVG, drawn by hand: the page needs two small time-series plots (an offer's price
// history, a GPU's 24 h min/avg/max), about a hundred lines. A chart library would be the larger
// part of the page's JavaScript (uPlot ~50 KB and canvas-only, Chart.js ~200 KB), and SVG keeps the
// drawing in the DOM: styled by our CSS, described for screen readers, checkable by tests.
const NS = "http://www.w3.org/2000/svg";
const W = 720, H = 240, PAD = { left: 64, right: 16, top: 14, bottom: 30 };

function el(name, attributes, parent) {
  const node = document.createElementNS(NS, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (parent) parent.append(node);
  return node;
}

function ticks(low, high, count) {
  const step = (high - low) / count;
  return Array.from({ length: count + 1 }, (_, i) => low + i * step);
}

const timeLabel = (ms, span) => new Date(ms).toLocaleString([], span > 2 * 86400000
  ? { month: "short", day: "numeric" } : { hour: "2-digit", minute: "2-digit", hour12: false });

/**
 * Draw `series` ([{name, points: [[ms, value], ...], step}]) into `svg`; `band` ([[ms, low, high]])
 * is shaded behind them. `format(value, digits)` labels the y axis, `digits` being the decimals that
 * tell its ticks apart. Returns the number of points drawn.
 */
export function draw(svg, { series, band = [], format }) {
  svg.replaceChildren();
  const all = [...series.flatMap((s) => s.points), ...band.flatMap(([t, lo, hi]) => [[t, lo], [t, hi]])];
  if (!all.length) return 0;
  const times = all.map((p) => p[0]), values = all.map((p) => p[1]);
  let [t0, t1] = [Math.min(...times), Math.max(...times)];
  let [v0, v1] = [Math.min(...values), Math.max(...values)];
  if (t0 === t1) [t0, t1] = [t0 - 3600000, t1 + 3600000];
  const margin = (v1 - v0) * 0.1 || Math.abs(v1) * 0.1 || 1;
  [v0, v1] = [Math.max(0, v0 - margin), v1 + margin];
  const x = (t) => PAD.left + ((t - t0) / (t1 - t0)) * (W - PAD.left - PAD.right);
  const y = (v) => H - PAD.bottom - ((v - v0) / (v1 - v0)) * (H - PAD.top - PAD.bottom);

  const digits = Math.max(0, Math.ceil(-Math.log10((v1 - v0) / 4)));
  for (const v of ticks(v0, v1, 4)) {
    el("line", { class: "grid", x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v) }, svg);
    el("text", { x: PAD.left - 6, y: y(v) + 4, "text-anchor": "end" }, svg).textContent = format(v, digits);
  }
  for (const t of ticks(t0, t1, 4)) {
    el("text", { x: x(t), y: H - 8, "text-anchor": "middle" }, svg).textContent = timeLabel(t, t1 - t0);
  }
  el("line", { class: "axis", x1: PAD.left, x2: PAD.left, y1: PAD.top, y2: H - PAD.bottom }, svg);
  el("line", { class: "axis", x1: PAD.left, x2: W - PAD.right, y1: H - PAD.bottom, y2: H - PAD.bottom }, svg);
  if (band.length) {
    const upper = band.map(([t, , hi]) => `${x(t)},${y(hi)}`), lower = band.map(([t, lo]) => `${x(t)},${y(lo)}`).reverse();
    el("polygon", { class: "band", points: [...upper, ...lower].join(" ") }, svg);
  }
  for (const { name, points, step, cls = "" } of series) {
    let d = "";
    points.forEach(([t, v], i) => {
      if (i === 0) d += `M${x(t)},${y(v)}`;
      else d += step ? `H${x(t)}V${y(v)}` : `L${x(t)},${y(v)}`;
    });
    el("path", { class: `line ${cls}`, d, "data-series": name }, svg);
    if (points.length <= 60) for (const [t, v] of points) el("circle", { class: "dot", cx: x(t), cy: y(v), r: 2.5 }, svg);
  }
  svg.removeAttribute("hidden"); // an SVG element has no `hidden` property
  return all.length;
}
