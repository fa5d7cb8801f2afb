/* Plain SVG charts for the pushsim dashboard: line charts over the run clock and the fault
   windows on a time axis. No dependencies. */
"use strict";

const Charts = (() => {
  const NS = "http://www.w3.org/2000/svg";

  function el(name, attrs, parent) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (parent) parent.appendChild(node);
    return node;
  }

  function text(parent, x, y, content, anchor) {
    const t = el("text", { x, y, "text-anchor": anchor || "start" }, parent);
    t.textContent = content;
    return t;
  }

  function clear(svg) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
  }

  function niceCeil(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function fmt(v) {
    if (v >= 1000) return (v / 1000).toFixed(v >= 10000 ? 0 : 1) + "k";
    if (v >= 10 || v === 0 || Number.isInteger(v)) return v.toFixed(0);
    return v.toFixed(v >= 1 ? 1 : 2);
  }

  function timeTicks(x0, x1) {
    const span = x1 - x0;
    const step = span > 600 ? 120 : span > 240 ? 60 : span > 90 ? 30 : span > 30 ? 10 : 5;
    const out = [];
    for (let t = Math.ceil(x0 / step) * step; t <= x1; t += step) out.push(t);
    return out;
  }

  /* series: [{name, color, points: [[t, v], ...]}]; x0..x1 in run seconds. */
  function lines(svg, opts) {
    const W = opts.width || 420, H = opts.height || 150;
    const L = 38, R = 8, T = 8, B = 18;
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    clear(svg);
    const x0 = opts.x0, x1 = Math.max(opts.x1, opts.x0 + 1);
    let max = 0;
    for (const s of opts.series) for (const [, v] of s.points) if (v > max) max = v;
    const ymax = 4 * niceCeil(max / 4); // four grid steps of a round size
    const sx = (t) => L + ((t - x0) / (x1 - x0)) * (W - L - R);
    const sy = (v) => H - B - (v / ymax) * (H - T - B);
    for (let i = 0; i <= 4; i++) {
      const v = (ymax * i) / 4;
      el("line", { x1: L, x2: W - R, y1: sy(v), y2: sy(v), class: i ? "grid" : "axis" }, svg);
      text(svg, L - 4, sy(v) + 3, fmt(v), "end");
    }
    for (const t of timeTicks(x0, x1)) {
      el("line", { x1: sx(t), x2: sx(t), y1: H - B, y2: H - B + 3, class: "axis" }, svg);
      text(svg, sx(t), H - 5, `${Math.round(t)}s`, "middle");
    }
    if (opts.unit) text(svg, L + 4, T + 9, opts.unit);
    for (const s of opts.series) {
      if (!s.points.length) continue;
      const d = s.points.map(([t, v]) => `${sx(t).toFixed(1)},${sy(v).toFixed(1)}`).join(" ");
      const line = el("polyline", { points: d, class: "series", stroke: s.color, "data-series": s.name }, svg);
      el("title", {}, line).textContent = s.name;
    }
  }

  function legend(div, series) {
    div.replaceChildren();
    for (const s of series) {
      const span = document.createElement("span");
      span.dataset.series = s.name;
      const swatch = document.createElement("i");
      swatch.style.background = s.color;
      span.append(swatch, s.label || s.name);
      div.appendChild(span);
    }
  }

  /* rows: [{id, kind, provider, start, end, open, variant, color}] on x0..x1 (run seconds). */
  function timeline(svg, opts) {
    const W = 640, rowH = 18, T = 6, B = 18, L = 130, R = 10;
    const rows = opts.rows;
    const H = Math.max(60, T + B + rows.length * rowH + 6);
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    clear(svg);
    const x0 = opts.x0, x1 = Math.max(opts.x1, opts.x0 + 1);
    const sx = (t) => L + ((Math.min(Math.max(t, x0), x1) - x0) / (x1 - x0)) * (W - L - R);
    el("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, class: "axis" }, svg);
    for (const t of timeTicks(x0, x1)) {
      el("line", { x1: sx(t), x2: sx(t), y1: T, y2: H - B, class: "grid" }, svg);
      text(svg, sx(t), H - 5, `${Math.round(t)}s`, "middle");
    }
    rows.forEach((r, i) => {
      const y = T + i * rowH;
      text(svg, 4, y + 12, `${r.id} ${r.kind} ${r.provider}`.slice(0, 24));
      if (r.end < x0 || r.start > x1) return;
      const x = sx(r.start), w = Math.max(2, sx(r.end) - x);
      const bar = el("rect", {
        x, y: y + 2, width: w, height: rowH - 5, rx: 3,
        fill: r.color, "fill-opacity": r.open ? 0.85 : 0.35, "data-fault": r.id,
      }, svg);
      el("title", {}, bar).textContent = `${r.id}: ${r.kind} ${r.provider} ${r.variant || ""} ${r.start.toFixed(1)}s–${r.end.toFixed(1)}s`;
    });
    if (!rows.length) text(svg, 4, T + 14, "no faults yet");
    el("line", { x1: sx(opts.now), x2: sx(opts.now), y1: T, y2: H - B, class: "now" }, svg);
    text(svg, sx(opts.now) + 3, T + 9, "now");
  }

  return { lines, legend, timeline, fmt };
})();
