/* nwlab watch: the live page onto a campaign directory (docs/live-view.md).

   One state object at a time (GET api/state once, then the `state` events of GET events)
   replaces what the page shows; nothing older is kept. The DOM is reconciled in place (runs by
   position and procedure, figures by id, incidents by time and text) so that uPlot charts are
   updated with setData instead of being rebuilt, and what the reader opened stays open.
   Every request carries the page's own ?token=.  No build step, no framework; uPlot (vendored)
   draws the charts. */
(() => {
  "use strict";

  // --- requests -------------------------------------------------------------------------------
  const TOKEN = new URLSearchParams(window.location.search).get("token");

  /** `path` (relative to the page, may hold a #fragment) with the page's token appended. */
  function withToken(path) {
    if (!TOKEN) return path;
    const hash = path.indexOf("#");
    const base = hash < 0 ? path : path.slice(0, hash);
    const frag = hash < 0 ? "" : path.slice(hash);
    return base + (base.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(TOKEN) + frag;
  }

  /** The state JSON; a server written in Python may let NaN/Infinity through, read them as null. */
  function parseState(text) {
    try {
      return JSON.parse(text);
    } catch (first) {
      try {
        return JSON.parse(text.replace(/([:,[]\s*)-?(?:NaN|Infinity)(?=\s*[,\]}])/g, "$1null"));
      } catch (second) {
        pageProblem("the server sent a state that is not JSON (" + first.message + ")");
        return null;
      }
    }
  }

  async function fetchState() {
    let response;
    try {
      response = await fetch(withToken("api/state"), { cache: "no-store", headers: { Accept: "application/json" } });
    } catch (exc) {
      return { kind: "down" };
    }
    if (response.status === 401 || response.status === 403) return { kind: "forbidden" };
    if (!response.ok) return { kind: "down" };
    let text;
    try {
      text = await response.text();
    } catch (exc) {
      return { kind: "down" };
    }
    const state = parseState(text);
    return state ? { kind: "ok", state } : { kind: "down" };
  }

  // --- small DOM helpers ----------------------------------------------------------------------
  const $ = (id) => document.getElementById(id);

  function h(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text != null) node.textContent = text;
    return node;
  }

  function setText(node, text) {
    text = text == null ? "" : String(text);
    if (node.textContent !== text) node.textContent = text;
  }

  function setAttr(node, name, value) {
    if (value == null) {
      if (node.hasAttribute(name)) node.removeAttribute(name);
    } else if (node.getAttribute(name) !== String(value)) {
      node.setAttribute(name, String(value));
    }
  }

  function show(node, visible) {
    if (node.hidden === visible) node.hidden = !visible;
  }

  /** Children of `parent` made exactly `nodes`, in that order, moving only what is out of place. */
  function placeChildren(parent, nodes) {
    let cursor = parent.firstChild;
    for (const node of nodes) {
      if (node === cursor) {
        cursor = cursor.nextSibling;
      } else {
        parent.insertBefore(node, cursor);
      }
    }
    while (cursor) {
      const next = cursor.nextSibling;
      parent.removeChild(cursor);
      cursor = next;
    }
  }

  const slug = (text) => String(text).toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "") || "unknown";
  const str = (value) => (value == null ? "" : String(value));
  const finite = (value) => typeof value === "number" && Number.isFinite(value);

  // --- numbers and times ----------------------------------------------------------------------
  const MINUS = "\u2212";
  const minus = (text) => text.replace(/^-/, MINUS).replace(/e-/, "e" + MINUS);

  function pad2(n) {
    return n < 10 ? "0" + n : String(n);
  }

  /** Seconds as h:mm:ss (hours past 24 keep counting). */
  function hms(seconds) {
    if (!finite(seconds)) return "\u2013";
    let s = Math.max(0, Math.round(seconds));
    const hours = Math.floor(s / 3600);
    s -= hours * 3600;
    const minutes = Math.floor(s / 60);
    return hours + ":" + pad2(minutes) + ":" + pad2(s - minutes * 60);
  }

  function percent(fraction) {
    if (!finite(fraction)) return "\u2013";
    const p = Math.min(1, Math.max(0, fraction)) * 100;
    return (p >= 99.95 && fraction < 1 ? "99.9" : p.toFixed(1)) + " %";
  }

  function clockOf(date) {
    return pad2(date.getHours()) + ":" + pad2(date.getMinutes()) + ":" + pad2(date.getSeconds());
  }

  function dayOf(date) {
    return date.getFullYear() + "-" + pad2(date.getMonth() + 1) + "-" + pad2(date.getDate());
  }

  /** Local time of day; the date too when it is not today. */
  function localTime(date) {
    if (!date || Number.isNaN(date.getTime())) return "";
    const today = dayOf(new Date()) === dayOf(date);
    return today ? clockOf(date) : dayOf(date) + " " + clockOf(date);
  }

  function isoDate(text) {
    if (!text) return null;
    const date = new Date(text);
    return Number.isNaN(date.getTime()) ? null : date;
  }

  const PREFIX = { "-24": "y", "-21": "z", "-18": "a", "-15": "f", "-12": "p", "-9": "n", "-6": "\u00b5",
    "-3": "m", "0": "", "3": "k", "6": "M", "9": "G", "12": "T", "15": "P", "18": "E" };
  /** Units never given an SI prefix. */
  const NO_PREFIX = new Set(["%", "dB", "dBm", "dBc", "\u00b0", "deg", "\u00b0C", "rad", "counts", "count", "#",
    "a.u.", "arb.", "arb. u.", "ppm", "min", "h", "d", "x", "\u00d7"]);
  /** Units given prefixes below 1 only (ms, mK) but never above (no ks, no kK). */
  const NO_UP_PREFIX = new Set(["s", "K"]);

  const prefixable = (unit) => !!unit && !NO_PREFIX.has(unit) && !/^[0-9(\u00b7/]|[0-9^\u207b\u00b9\u00b2\u00b3]/.test(unit);
  /** A figure's unit as shown: "1" (dimensionless) is no unit. */
  const unitOf = (unit) => (str(unit).trim() === "1" ? "" : str(unit).trim());

  /** The multiple of 3 for a magnitude (engineering exponent), clamped to the named prefixes. */
  function engExponent(magnitude) {
    if (!(magnitude > 0) || !Number.isFinite(magnitude)) return 0;
    const e = Math.floor((Math.log10(magnitude) + 1e-9) / 3) * 3;
    return Math.max(-24, Math.min(18, e));
  }

  function prefixExponent(magnitude, unit) {
    let e = engExponent(magnitude);
    if (e > 0 && NO_UP_PREFIX.has(unit)) e = 0;
    return e;
  }

  const scaled = (v, e) => (e < 0 ? v * 10 ** -e : v / 10 ** e);
  const unscaled = (v, e) => (e < 0 ? v / 10 ** -e : v * 10 ** e);

  /** `digits` significant digits without trailing zeros. */
  function sig(value, digits) {
    let text = value.toPrecision(digits);
    if (text.includes("e")) text = String(Number(text));
    if (text.includes(".") && !text.includes("e")) text = text.replace(/\.?0+$/, "");
    return text;
  }

  /** A value with its unit in SI: 12.35 µA, 4.2 K, 1.2e−7 (no unit). */
  function formatSI(value, unit, digits = 4) {
    unit = str(unit);
    if (!finite(value)) return "\u2013";
    const space = unit ? "\u202f" : "";
    if (value === 0) return "0" + space + unit;
    if (prefixable(unit)) {
      const e = prefixExponent(Math.abs(value), unit);
      return minus(sig(scaled(value, e), digits)) + space + PREFIX[e] + unit;
    }
    const magnitude = Math.abs(value);
    const text = magnitude >= 1e5 || magnitude < 1e-3 ? value.toExponential(digits - 1).replace(/\.?0+e/, "e") : sig(value, digits);
    return minus(text) + space + unit;
  }

  /** Decimals that show every multiple of `step` exactly (step 2.5 -> 1, 0.25 -> 2). */
  function decimalsFor(step) {
    step = Math.abs(step);
    if (!(step > 0) || !Number.isFinite(step)) return 0;
    for (let d = 0; d <= 12; d++) {
      const s = step * 10 ** d;
      if (Math.abs(Math.round(s) - s) < 1e-6 * Math.max(1, s)) return d;
    }
    return 12;
  }

  const SUPERSCRIPT = { "-": "\u207b", "0": "\u2070", "1": "\u00b9", "2": "\u00b2", "3": "\u00b3", "4": "\u2074",
    "5": "\u2075", "6": "\u2076", "7": "\u2077", "8": "\u2078", "9": "\u2079" };
  const superscript = (n) => String(n).split("").map((c) => SUPERSCRIPT[c] || c).join("");

  // --- figures (uPlot, one per FIGURE) ----------------------------------------------------------
  const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f",
    "#bcbd22", "#393b79"];
  const MARKER_COLOR = "#d62728";
  const PLOT_HEIGHT = 250;
  const FONT_FAMILY = '-apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';
  const AXIS_FONT = "11px " + FONT_FAMILY;
  const LABEL_FONT = "12px " + FONT_FAMILY;

  function rgba(hex, alpha) {
    const n = parseInt(hex.slice(1), 16);
    return "rgba(" + ((n >> 16) & 255) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + alpha + ")";
  }

  const measureCtx = document.createElement("canvas").getContext("2d");

  function textWidth(text, font) {
    measureCtx.font = font;
    return measureCtx.measureText(text).width;
  }

  const num = (value) => (finite(value) ? value : null);

  /** One series made safe to draw: x/y with null where a point cannot be shown (not a number,
      or not positive on a log axis), and its interval bounds if it has them. */
  function cleanSeries(series, xlog, ylog) {
    const xs = Array.isArray(series.x) ? series.x : [];
    const ys = Array.isArray(series.y) ? series.y : [];
    const n = Math.min(xs.length, ys.length);
    const x = new Array(n);
    const y = new Array(n);
    for (let i = 0; i < n; i++) {
      let xv = num(xs[i]);
      let yv = num(ys[i]);
      if (xv != null && xlog && xv <= 0) xv = null;
      if (yv != null && ylog && yv <= 0) yv = null;
      x[i] = xv;
      y[i] = xv == null ? null : yv;
    }
    let low = null;
    let high = null;
    if (Array.isArray(series.low) && Array.isArray(series.high)) {
      low = new Array(n);
      high = new Array(n);
      for (let i = 0; i < n; i++) {
        let lo = num(series.low[i]);
        let hi = num(series.high[i]);
        if (ylog) {
          if (lo != null && lo <= 0) lo = null;
          if (hi != null && hi <= 0) hi = null;
        }
        low[i] = x[i] == null ? null : lo;
        high[i] = x[i] == null ? null : hi;
      }
    }
    const style = series.style === "points" || series.style === "bars" ? series.style : "line";
    return { label: str(series.label), style, x, y, low, high };
  }

  function cleanFigure(fig) {
    const xa = fig.x || {};
    const ya = fig.y || {};
    const xlog = !!xa.log;
    const ylog = !!ya.log;
    const series = (Array.isArray(fig.series) ? fig.series : []).map((s) => cleanSeries(s || {}, xlog, ylog));
    const markers = { x: [], y: [], label: [] };
    for (const m of Array.isArray(fig.markers) ? fig.markers : []) {
      if (!m) continue;
      const mx = num(m.x);
      const my = num(m.y);
      if (mx == null || my == null || (xlog && mx <= 0) || (ylog && my <= 0)) continue;
      markers.x.push(mx);
      markers.y.push(my);
      markers.label.push(str(m.label));
    }
    const clean = {
      x: { label: str(xa.label), unit: unitOf(xa.unit), log: xlog, exp: 0 },
      y: { label: str(ya.label), unit: unitOf(ya.unit), log: ylog, exp: 0 },
      series,
      markers,
    };
    scaleToPrefixes(clean);
    return clean;
  }

  /** The power of ten a linear axis is shown in (the SI prefix of its unit, or ×10ⁿ without one),
      from the largest magnitude it holds; 0 on a log axis, whose ticks carry their own prefixes. */
  function axisExponent(axis, magnitude) {
    if (axis.log || !(magnitude > 0)) return 0;
    if (prefixable(axis.unit)) return prefixExponent(magnitude, axis.unit);
    if (magnitude >= 1e5 || magnitude < 1e-2) return engExponent(magnitude);
    return 0;
  }

  /** Every value of a linear axis divided by its axis's power of ten, so that the chart works in
      the unit shown (uPlot finds no ticks for spans below about 1e-16, e.g. attojoules in J). */
  function scaleToPrefixes(clean) {
    const biggest = { x: 0, y: 0 };
    const take = (key, v) => {
      if (v != null && Math.abs(v) > biggest[key]) biggest[key] = Math.abs(v);
    };
    for (const s of clean.series) {
      for (let k = 0; k < s.x.length; k++) {
        if (s.y[k] == null) continue;
        take("x", s.x[k]);
        take("y", s.y[k]);
        if (s.low) {
          take("y", s.low[k]);
          take("y", s.high[k]);
        }
      }
    }
    clean.markers.x.forEach((v) => take("x", v));
    clean.markers.y.forEach((v) => take("y", v));
    const ex = axisExponent(clean.x, biggest.x);
    const ey = axisExponent(clean.y, biggest.y);
    clean.x.exp = ex;
    clean.y.exp = ey;
    const sx = (v) => (v == null ? null : scaled(v, ex));
    const sy = (v) => (v == null ? null : scaled(v, ey));
    for (const s of clean.series) {
      if (ex) s.x = s.x.map(sx);
      if (ey) {
        s.y = s.y.map(sy);
        if (s.low) {
          s.low = s.low.map(sy);
          s.high = s.high.map(sy);
        }
      }
    }
    if (ex) clean.markers.x = clean.markers.x.map(sx);
    if (ey) clean.markers.y = clean.markers.y.map(sy);
  }

  /** What a chart is built from; a change of it rebuilds the chart, anything else is setData. */
  function shapeOf(clean) {
    return JSON.stringify([clean.x.log, clean.y.log, clean.x.exp, clean.y.exp,
      clean.series.map((s) => [s.style, !!s.low]), clean.markers.x.length > 0]);
  }

  /** uPlot's data (mode 2): one [x, y] per series, the markers last; an empty placeholder when
      the figure has neither (uPlot needs a series). */
  function dataOf(clean) {
    const data = [null];
    for (const s of clean.series) data.push([s.x, s.y]);
    if (clean.markers.x.length) data.push([clean.markers.x, clean.markers.y]);
    if (data.length === 1) data.push([[], []]);
    return data;
  }

  // Path builders (uPlot mode 2: each series has its own x, in any order, e.g. an up-and-down sweep).
  function emptyPaths() {
    return { stroke: new Path2D(), fill: null, clip: null, band: null, gaps: null, flags: 0 };
  }

  function linePaths(u, si) {
    const paths = emptyPaths();
    const [xs, ys] = u.data[si];
    let pen = false;
    for (let i = 0; i < xs.length; i++) {
      if (xs[i] == null || ys[i] == null) {
        pen = false;
        continue;
      }
      const px = u.valToPos(xs[i], "x", true);
      const py = u.valToPos(ys[i], "y", true);
      if (pen) paths.stroke.lineTo(px, py);
      else paths.stroke.moveTo(px, py);
      pen = true;
    }
    return paths;
  }

  function pointPathsOfSize(cssSize) {
    return (u, si) => {
      const paths = emptyPaths();
      const [xs, ys] = u.data[si];
      const r = (cssSize / 2) * uPlot.pxRatio;
      const circles = new Path2D();
      for (let i = 0; i < xs.length; i++) {
        if (xs[i] == null || ys[i] == null) continue;
        const px = u.valToPos(xs[i], "x", true);
        const py = u.valToPos(ys[i], "y", true);
        circles.moveTo(px + r, py);
        circles.arc(px, py, r, 0, 2 * Math.PI);
      }
      paths.stroke = circles;
      paths.fill = circles;
      return paths;
    };
  }

  function barPaths(u, si) {
    const paths = emptyPaths();
    const [xs, ys] = u.data[si];
    const fill = new Path2D();
    const px = [];
    for (let i = 0; i < xs.length; i++) if (xs[i] != null && ys[i] != null) px.push(u.valToPos(xs[i], "x", true));
    if (px.length === 0) return paths;
    px.sort((a, b) => a - b);
    let gap = Infinity;
    for (let i = 1; i < px.length; i++) if (px[i] - px[i - 1] > 0.5) gap = Math.min(gap, px[i] - px[i - 1]);
    const width = Math.max(1, Number.isFinite(gap) ? gap * 0.88 : Math.min(40 * uPlot.pxRatio, u.bbox.width * 0.1));
    const sc = u.scales.y;
    let base;
    if (sc.distr === 3) base = u.bbox.top + u.bbox.height;
    else base = u.valToPos(Math.min(Math.max(0, sc.min), sc.max), "y", true);
    for (let i = 0; i < xs.length; i++) {
      if (xs[i] == null || ys[i] == null) continue;
      const x = u.valToPos(xs[i], "x", true);
      const y = u.valToPos(ys[i], "y", true);
      if (Math.abs(base - y) < 0.5) continue; // an empty bin: no bar
      fill.rect(x - width / 2, Math.min(y, base), width, Math.abs(base - y));
    }
    paths.stroke = fill;
    paths.fill = fill;
    return paths;
  }

  const noPaths = () => null;

  /** Grid lines and ticks of a log axis spanning two decades or more: at the decades only. */
  function decadesOnLongLogAxes(u, splits, axisIdx) {
    const sc = u.scales[u.axes[axisIdx].scale];
    if (sc.distr !== 3 || !(sc.min > 0) || Math.log10(sc.max / sc.min) < 2) return splits;
    return splits.map((v) => (v != null && Math.abs(Math.log10(v) - Math.round(Math.log10(v))) < 1e-6 ? v : null));
  }

  class Figure {
    constructor() {
      this.el = h("div", "figure");
      const head = h("div", "figure-head");
      this.titleEl = h("span", "figure-title");
      this.zoomEl = h("span", "figure-zoom", "zoomed \u00b7 double-click resets");
      this.zoomEl.hidden = true;
      this.pointsEl = h("span", "figure-points");
      head.append(this.titleEl, this.zoomEl, this.pointsEl);
      this.plotEl = h("div", "figure-plot");
      this.readoutEl = h("div", "figure-readout", "\u00a0");
      this.noteEl = h("div", "figure-note");
      this.emptyEl = h("div", "figure-empty", "no data yet");
      this.emptyEl.hidden = true;
      this.plotEl.append(this.emptyEl);
      this.el.append(head, this.plotEl, this.readoutEl, this.noteEl);
      this.u = null;
      this.shape = null;
      this.clean = null;
      this.auto = { x: null, y: null };
      this.zoomed = { x: false, y: false };
      this.width = 0;
      this.observer = new ResizeObserver(() => this.scheduleResize());
      this.observer.observe(this.plotEl);
      this.frame = 0;
    }

    /** A figure that could not be drawn: said in its box, rebuilt from scratch by the next update. */
    fail(exc) {
      try {
        if (this.u) this.u.destroy();
      } catch (ignored) {
        // a chart that failed half-built may fail to tear down as well; it is dropped either way
      }
      this.u = null;
      this.shape = null;
      setText(this.emptyEl, "could not draw this figure: " + exc.message);
      show(this.emptyEl, true);
    }

    update(fig) {
      setAttr(this.el, "data-figure-id", str(fig.id));
      setAttr(this.el, "data-points", finite(fig.points) ? String(fig.points) : "0");
      setText(this.titleEl, fig.title || fig.id || "figure");
      setText(this.pointsEl, finite(fig.points) ? fig.points.toLocaleString("en-US") + " points" : "");
      setText(this.noteEl, str(fig.note));
      show(this.noteEl, !!fig.note);
      const clean = cleanFigure(fig);
      this.clean = clean;
      const shape = shapeOf(clean);
      const data = dataOf(clean);
      const anyPoint = clean.series.some((s) => s.y.some((v) => v != null)) || clean.markers.x.length > 0;
      setText(this.emptyEl, clean.series.length || clean.markers.x.length ? "no data yet" : "no series yet");
      show(this.emptyEl, !anyPoint);
      if (!this.u || shape !== this.shape) {
        this.build(data);
        this.shape = shape;
      } else {
        this.syncLabels();
        if (this.zoomed.x || this.zoomed.y) {
          this.u.setData(data, false);
          this.u.redraw(true, true);
        } else {
          this.u.setData(data, true);
        }
      }
    }

    currentWidth() {
      const width = Math.floor(this.plotEl.clientWidth);
      return width > 50 ? width : this.width || 560;
    }

    build(data) {
      if (this.u) this.u.destroy();
      this.zoomed = { x: false, y: false };
      this.auto = { x: null, y: null };
      show(this.zoomEl, false);
      const clean = this.clean;
      const series = [{}];
      clean.series.forEach((s, i) => {
        const color = PALETTE[i % PALETTE.length];
        const opts = { label: s.label || "series " + (i + 1), stroke: color, points: { show: false } };
        if (s.style === "line") {
          opts.paths = linePaths;
          opts.width = 1.5;
        } else if (s.style === "points") {
          opts.paths = pointPathsOfSize(4.5);
          opts.fill = rgba(color, 0.55);
          opts.width = 1;
        } else {
          opts.paths = barPaths;
          opts.fill = rgba(color, 0.35);
          opts.width = 1;
        }
        series.push(opts);
      });
      if (clean.markers.x.length) {
        series.push({ label: "markers", stroke: MARKER_COLOR, fill: rgba(MARKER_COLOR, 0.9), width: 1.2,
          paths: pointPathsOfSize(7), points: { show: false } });
      }
      if (series.length === 1) series.push({ label: "no series", paths: noPaths, points: { show: false } });
      const axis = (key) => ({
        scale: key,
        font: AXIS_FONT,
        labelFont: LABEL_FONT,
        labelSize: 18,
        labelGap: 2,
        gap: 4,
        stroke: "#3b4450",
        grid: { stroke: "#e6e9ee", width: 1, filter: decadesOnLongLogAxes },
        ticks: { stroke: "#c3c9d1", width: 1, size: 4, filter: decadesOnLongLogAxes },
        space: key === "x" ? 64 : 32,
        label: (u) => this.axisLabel(u, key),
        values: (u, splits, ai, space, incr) => this.tickValues(u, key, splits, incr),
        size: key === "y" ? (u, values) => this.yAxisSize(values) : 28,
      });
      const scale = (key) => {
        const log = clean[key].log;
        return Object.assign({ auto: true, time: false, range: (u) => this.range(key) },
          log ? { distr: 3, log: 10 } : { distr: 1 });
      };
      const opts = {
        mode: 2,
        width: this.currentWidth(),
        height: PLOT_HEIGHT,
        pxAlign: 0,
        scales: { x: scale("x"), y: scale("y") },
        axes: [axis("x"), axis("y")],
        series,
        legend: { show: clean.series.length > 1 || clean.markers.x.length > 0, live: false },
        cursor: { points: { show: false }, drag: { x: true, y: true, uni: 30 } },
        hooks: {
          drawAxes: [(u) => this.drawIntervals(u)],
          draw: [(u) => this.drawMarkerLabels(u)],
          setScale: [(u, key) => this.noteScale(u, key)],
          setCursor: [(u) => this.readout(u)],
        },
      };
      this.width = opts.width;
      this.u = new uPlot(opts, data, this.plotEl);
      this.u.over.addEventListener("mouseleave", () => setText(this.readoutEl, "\u00a0"));
    }

    syncLabels() {
      const u = this.u;
      const labels = this.clean.series.map((s, i) => s.label || "series " + (i + 1));
      const cells = u.root.querySelectorAll(".u-legend .u-series .u-label");
      labels.forEach((label, i) => {
        if (u.series[i + 1].label !== label) {
          u.series[i + 1].label = label;
          if (cells[i]) setText(cells[i], label);
        }
      });
    }

    scheduleResize() {
      if (this.frame) return;
      this.frame = window.requestAnimationFrame(() => {
        this.frame = 0;
        if (!this.u) return;
        const width = Math.floor(this.plotEl.clientWidth);
        if (width > 50 && width !== this.width) {
          this.width = width;
          this.u.setSize({ width, height: PLOT_HEIGHT });
        }
      });
    }

    /** The auto range of one scale: every shown series' points and interval bounds, the markers,
        and zero under bars; padded, and a decade wide at least on log axes. */
    range(key) {
      const clean = this.clean;
      const u = this.u;
      const log = clean[key].log;
      let lo = Infinity;
      let hi = -Infinity;
      const take = (v) => {
        if (v == null) return;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      };
      let bars = false;
      let tight = true;
      clean.series.forEach((s, i) => {
        if (u && u.series[i + 1] && !u.series[i + 1].show) return;
        if (s.style !== "line") tight = false;
        if (s.style === "bars") bars = true;
        for (let k = 0; k < s.x.length; k++) {
          if (s.y[k] == null) continue;
          if (key === "x") {
            take(s.x[k]);
          } else {
            take(s.y[k]);
            if (s.low) {
              take(s.low[k]);
              take(s.high[k]);
            }
          }
        }
      });
      const mi = clean.series.length + 1;
      if (clean.markers.x.length && !(u && u.series[mi] && !u.series[mi].show)) {
        for (const v of clean.markers[key]) take(v);
      }
      let result;
      if (lo > hi) {
        result = log ? [1, 10] : [0, 1];
      } else if (log) {
        // Whole decades, one more where a point sits on a decade's edge (its marker would be cut).
        result = uPlot.rangeLog(lo / 1.15, hi * 1.15, 10, true);
        if (!(result[0] > 0) || !(result[1] > result[0])) result = [lo / 10, hi * 10];
      } else {
        if (key === "y" && bars) {
          lo = Math.min(lo, 0);
          hi = Math.max(hi, 0);
        }
        if (lo === hi) {
          const d = lo === 0 ? 1 : Math.abs(lo) * 0.1;
          lo -= d;
          hi += d;
        }
        const span = hi - lo;
        if (key === "x") {
          let pad = tight && !clean.markers.x.length ? 0 : span * 0.03;
          if (bars && !log) pad = Math.max(pad, 0.55 * this.barSpacing());
          result = [lo - pad, hi + pad];
        } else {
          result = [bars && lo === 0 ? 0 : lo - span * 0.07, bars && hi === 0 ? 0 : hi + span * 0.07];
        }
      }
      this.auto[key] = [result[0], result[1]];
      return [result[0], result[1]];
    }

    /** The closest two x of the bars series (what a bar is wide), 0 with fewer than two. */
    barSpacing() {
      let gap = Infinity;
      for (const s of this.clean.series) {
        if (s.style !== "bars") continue;
        const xs = s.x.filter((v, k) => v != null && s.y[k] != null).sort((a, b) => a - b);
        for (let k = 1; k < xs.length; k++) if (xs[k] > xs[k - 1]) gap = Math.min(gap, xs[k] - xs[k - 1]);
      }
      return Number.isFinite(gap) ? gap : 0;
    }

    noteScale(u, key) {
      if (key !== "x" && key !== "y") return;
      const auto = this.auto[key];
      const sc = u.scales[key];
      this.zoomed[key] = !(auto && sc.min === auto[0] && sc.max === auto[1]);
      show(this.zoomEl, this.zoomed.x || this.zoomed.y);
    }

    axisLabel(u, key) {
      const axis = this.clean[key];
      const name = axis.label || key;
      const e = axis.exp;
      if (prefixable(axis.unit)) return name + " (" + PREFIX[e] + axis.unit + ")";
      const factor = e ? "\u00d710" + superscript(e) : "";
      const unit = [factor, axis.unit].filter(Boolean).join(" ");
      return unit ? name + " (" + unit + ")" : name;
    }

    tickValues(u, key, splits, incr) {
      const axis = this.clean[key];
      if (axis.log) {
        return splits.map((v) => {
          if (v == null) return "";
          if (prefixable(axis.unit)) {
            const e = prefixExponent(v, axis.unit);
            return sig(scaled(v, e), 3) + PREFIX[e];
          }
          return v >= 1e4 || v < 1e-3 ? minus(v.toExponential(0)) : sig(v, 3);
        });
      }
      // A linear axis holds its values already in the unit shown (cleanFigure scaled them).
      const decimals = decimalsFor(incr);
      return splits.map((v) => {
        if (v == null) return "";
        const text = v.toFixed(decimals);
        return /^-0(\.0*)?$/.test(text) ? text.slice(1) : minus(text);
      });
    }

    yAxisSize(values) {
      let widest = 0;
      for (const v of values || []) if (v) widest = Math.max(widest, textWidth(v, AXIS_FONT));
      return Math.ceil(Math.max(24, widest) + 4 + 4 + 4);
    }

    /** Interval bounds under the series: a band along a line, whiskers on points and bars. */
    drawIntervals(u) {
      const ctx = u.ctx;
      const { left, top, width, height } = u.bbox;
      const pr = uPlot.pxRatio;
      ctx.save();
      ctx.beginPath();
      ctx.rect(left, top, width, height);
      ctx.clip();
      this.clean.series.forEach((s, i) => {
        if (!s.low || !u.series[i + 1].show) return;
        const color = PALETTE[i % PALETTE.length];
        const X = (v) => u.valToPos(v, "x", true);
        const Y = (v) => u.valToPos(v, "y", true);
        if (s.style === "line") {
          ctx.fillStyle = rgba(color, 0.18);
          let run = [];
          const flush = () => {
            if (run.length > 1) {
              ctx.beginPath();
              run.forEach((k, j) => (j ? ctx.lineTo(X(s.x[k]), Y(s.high[k])) : ctx.moveTo(X(s.x[k]), Y(s.high[k]))));
              for (let j = run.length - 1; j >= 0; j--) ctx.lineTo(X(s.x[run[j]]), Y(s.low[run[j]]));
              ctx.closePath();
              ctx.fill();
            }
            run = [];
          };
          for (let k = 0; k < s.x.length; k++) {
            if (s.x[k] == null || s.low[k] == null || s.high[k] == null) flush();
            else run.push(k);
          }
          flush();
        } else {
          ctx.strokeStyle = rgba(color, 0.8);
          ctx.lineWidth = pr;
          const cap = 3 * pr;
          ctx.beginPath();
          for (let k = 0; k < s.x.length; k++) {
            if (s.x[k] == null || s.low[k] == null || s.high[k] == null) continue;
            const x = X(s.x[k]);
            const y0 = Y(s.low[k]);
            const y1 = Y(s.high[k]);
            ctx.moveTo(x, y0);
            ctx.lineTo(x, y1);
            ctx.moveTo(x - cap, y0);
            ctx.lineTo(x + cap, y0);
            ctx.moveTo(x - cap, y1);
            ctx.lineTo(x + cap, y1);
          }
          ctx.stroke();
        }
      });
      ctx.restore();
    }

    /** The markers' labels above their points, skipping a label that would cover another. */
    drawMarkerLabels(u) {
      const m = this.clean.markers;
      const si = this.clean.series.length + 1;
      if (!m.x.length || !u.series[si] || !u.series[si].show) return;
      const ctx = u.ctx;
      const pr = uPlot.pxRatio;
      const { left, top, width, height } = u.bbox;
      ctx.save();
      ctx.beginPath();
      ctx.rect(left, top, width, height);
      ctx.clip();
      ctx.font = 10 * pr + "px " + FONT_FAMILY;
      ctx.textAlign = "center";
      ctx.textBaseline = "bottom";
      ctx.lineJoin = "round";
      const taken = [];
      for (let k = 0; k < m.x.length; k++) {
        const text = m.label[k];
        if (!text) continue;
        const x = u.valToPos(m.x[k], "x", true);
        let y = u.valToPos(m.y[k], "y", true) - 6 * pr;
        if (x < left || x > left + width) continue;
        const w = ctx.measureText(text).width + 4 * pr;
        const hgt = 12 * pr;
        const cx = Math.min(Math.max(x, left + w / 2), left + width - w / 2);
        if (y - hgt < top) y = u.valToPos(m.y[k], "y", true) + 6 * pr + hgt;
        const box = [cx - w / 2, y - hgt, cx + w / 2, y];
        if (taken.some((b) => box[0] < b[2] && box[2] > b[0] && box[1] < b[3] && box[3] > b[1])) continue;
        taken.push(box);
        ctx.lineWidth = 3 * pr;
        ctx.strokeStyle = "rgba(255,255,255,0.9)";
        ctx.strokeText(text, cx, y);
        ctx.fillStyle = "#7a1010";
        ctx.fillText(text, cx, y);
      }
      ctx.restore();
    }

    /** Under the chart: the nearest point to the cursor (within 24 px), else the cursor's position. */
    readout(u) {
      const left = u.cursor.left;
      const top = u.cursor.top;
      if (!(left >= 0) || !(top >= 0) || !this.clean) {
        setText(this.readoutEl, "\u00a0");
        return;
      }
      const clean = this.clean;
      let best = null;
      let bestD = 24 * 24;
      const consider = (label, x, y) => {
        const dx = u.valToPos(x, "x") - left;
        const dy = u.valToPos(y, "y") - top;
        const d = dx * dx + dy * dy;
        if (d < bestD) {
          bestD = d;
          best = [label, x, y];
        }
      };
      clean.series.forEach((s, i) => {
        if (!u.series[i + 1].show) return;
        for (let k = 0; k < s.x.length; k++) if (s.y[k] != null) consider(s.label || "series " + (i + 1), s.x[k], s.y[k]);
      });
      clean.markers.x.forEach((x, k) => consider("marker " + (clean.markers.label[k] || ""), x, clean.markers.y[k]));
      const fmt = (key, v) => formatSI(unscaled(v, clean[key].exp), clean[key].unit);
      if (best) {
        setText(this.readoutEl, best[0] + ":  " + (clean.x.label || "x") + " = " + fmt("x", best[1]) + ",  "
          + (clean.y.label || "y") + " = " + fmt("y", best[2]));
      } else {
        setText(this.readoutEl, "cursor:  " + (clean.x.label || "x") + " = " + fmt("x", u.posToVal(left, "x"))
          + ",  " + (clean.y.label || "y") + " = " + fmt("y", u.posToVal(top, "y")));
      }
    }

    destroy() {
      this.observer.disconnect();
      if (this.frame) window.cancelAnimationFrame(this.frame);
      if (this.u) this.u.destroy();
      this.u = null;
      this.clean = null;
      this.el.remove();
    }
  }

  /** The figures of one run in `container`, reconciled by id with the charts already there. */
  function renderFigures(container, figures, list) {
    const seen = new Set();
    const nodes = [];
    for (const fig of list) {
      if (!fig || typeof fig !== "object") continue;
      let id = str(fig.id) || str(fig.title);
      while (seen.has(id)) id += "'";
      seen.add(id);
      let figure = figures.get(id);
      if (!figure) {
        figure = new Figure();
        figures.set(id, figure);
      }
      try {
        figure.update(fig);
      } catch (exc) {
        figure.fail(exc);
        pageProblem("could not draw the figure " + id + ": " + exc.message);
      }
      nodes.push(figure.el);
    }
    for (const [id, figure] of figures) {
      if (!seen.has(id)) {
        figure.destroy();
        figures.delete(id);
      }
    }
    placeChildren(container, nodes);
  }

  // --- runs -----------------------------------------------------------------------------------
  const PENDING = new Set(["planned", "not run"]);
  const runRecords = new Map(); // key -> record; only the runs of the latest state

  function newRunRecord(key) {
    const el = h("section", "run");
    const head = h("div", "run-head");
    const rec = {
      key, el,
      idx: h("span", "run-idx"),
      name: h("span", "run-name"),
      badge: h("span", "badge"),
      runId: h("span", "run-id mono"),
      when: h("span", "run-when"),
      progress: h("span", "run-progress"),
      bar: h("span", "mini-bar"),
      barFill: h("span", "mini-fill"),
      progressText: h("span", "run-progress-text"),
      report: h("a", "report-link", "report \u2197"),
      message: h("div", "run-message"),
      problem: h("div", "run-problem problem"),
      resultsWrap: h("div", "results-wrap"),
      resultsKey: null,
      details: h("details", "run-figures"),
      summary: h("summary", null, "Figures"),
      figuresEl: h("div", "figures"),
      liveEmpty: h("div", "figures-empty muted", "no live figures yet"),
      figures: new Map(),
      autoOpen: null,
      userToggled: false,
      allResults: false,
    };
    rec.bar.append(rec.barFill);
    rec.progress.append(rec.bar, rec.progressText);
    rec.report.target = "_blank";
    rec.report.rel = "noopener";
    head.append(rec.idx, rec.name, rec.badge, rec.runId, rec.when, rec.progress, h("span", "spacer"), rec.report);
    rec.details.append(rec.summary);
    rec.details.addEventListener("toggle", () => {
      if (rec.details.open !== rec.autoOpen) rec.userToggled = true;
    });
    el.append(head, rec.message, rec.problem, rec.resultsWrap, rec.details, rec.liveEmpty, rec.figuresEl);
    return rec;
  }

  /** Rows a results table shows before its "show all" (a run may archive dozens of results). */
  const RESULTS_SHOWN = 10;

  function renderResults(rec, results) {
    const list = Array.isArray(results) ? results.filter((r) => r && typeof r === "object") : [];
    const key = JSON.stringify(list);
    if (key === rec.resultsKey) return;
    rec.resultsKey = key;
    rec.resultsWrap.textContent = "";
    if (!list.length) {
      show(rec.resultsWrap, false);
      return;
    }
    const table = h("table", "results");
    const head = table.createTHead().insertRow();
    for (const [text, cls] of [["name", "name"], ["value", "val"], ["uncertainty", "unc"]]) head.append(h("th", cls, text));
    const body = table.createTBody();
    const foldable = list.length > RESULTS_SHOWN + 2;
    let anyLong = false;
    list.forEach((r, i) => {
      const row = body.insertRow();
      const value = str(r.value);
      const uncertainty = str(r.uncertainty);
      const unc = h("td", "unc");
      if (uncertainty.length > 60) {
        const clamp = h("div", "clamp", uncertainty);
        clamp.title = uncertainty;
        unc.append(clamp);
      } else {
        unc.textContent = uncertainty;
      }
      const long = value.length > 24;
      const val = h("td", long ? "val long" : "val");
      const valText = h("div", long ? "clamp" : null, value);
      if (long) {
        anyLong = true;
        if (value.length > 90) valText.title = value;
      }
      val.append(valText);
      row.append(h("td", "name", str(r.name)), val, unc);
      if (r.units && r.units !== "1") row.title = "units: " + r.units;
      if (foldable && i >= RESULTS_SHOWN) row.className = "more";
    });
    table.classList.toggle("folded", foldable && !rec.allResults);
    table.classList.toggle("has-long", anyLong);
    rec.resultsWrap.append(table);
    if (foldable) {
      const toggle = h("button", "link-button results-toggle");
      toggle.type = "button";
      const label = () => setText(toggle, rec.allResults ? "show the first " + RESULTS_SHOWN + " only"
        : "show all " + list.length + " results");
      label();
      toggle.addEventListener("click", () => {
        rec.allResults = !rec.allResults;
        table.classList.toggle("folded", !rec.allResults);
        label();
      });
      rec.resultsWrap.append(toggle);
    }
    show(rec.resultsWrap, true);
  }

  function renderRun(rec, run, position, latestEndedKey) {
    const status = str(run.status) || "unknown";
    const running = status === "running";
    const pending = PENDING.has(status);
    setAttr(rec.el, "data-procedure", str(run.procedure));
    setAttr(rec.el, "data-status", status);
    setAttr(rec.el, "data-run-id", run.run_id == null ? null : str(run.run_id));
    rec.el.className = "run status-" + slug(status) + (pending ? " pending" : "") + (running ? " live" : "");
    setText(rec.idx, String(position + 1));
    setText(rec.name, str(run.procedure) || "(unnamed)");
    setText(rec.badge, status);
    rec.badge.className = "badge status-" + slug(status);
    setText(rec.runId, str(run.run_id));
    setAttr(rec.runId, "title", run.archive ? "archive: " + run.archive : null);

    const started = isoDate(run.started);
    const finished = isoDate(run.finished);
    let when = "";
    if (started && finished) when = localTime(started) + " \u2192 " + clockOf(finished) + "  (" + hms((finished - started) / 1000) + ")";
    else if (started) when = "since " + localTime(started);
    else if (run.started) when = str(run.started);
    setText(rec.when, when);
    setAttr(rec.when, "title", [run.started && "started " + run.started, run.finished && "finished " + run.finished]
      .filter(Boolean).join("\n") || null);

    const hasProgress = running && (finite(run.fraction) || finite(run.left_s));
    show(rec.progress, hasProgress);
    if (hasProgress) {
      const f = finite(run.fraction) ? Math.min(1, Math.max(0, run.fraction)) : 0;
      rec.barFill.style.width = (f * 100).toFixed(2) + "%";
      setAttr(rec.progress, "data-fraction", finite(run.fraction) ? String(run.fraction) : "");
      setText(rec.progressText, percent(run.fraction) + (finite(run.left_s) ? "  \u00b7  ~" + hms(run.left_s) + " left" : ""));
    }

    if (run.report_anchor) {
      const href = withToken(str(run.report_anchor));
      setAttr(rec.report, "href", href);
      show(rec.report, true);
    } else {
      show(rec.report, false);
    }

    setText(rec.message, str(run.message));
    show(rec.message, !!run.message);
    setText(rec.problem, run.problem ? "\u26a0 " + run.problem : "");
    show(rec.problem, !!run.problem);

    renderResults(rec, run.results);

    const figures = Array.isArray(run.figures) ? run.figures : [];
    renderFigures(rec.figuresEl, rec.figures, figures);
    // A running run's figures stand in the open; an ended run's fold away (the latest one open).
    if (running || pending) {
      if (rec.figuresEl.parentNode !== rec.el) rec.el.append(rec.figuresEl);
      show(rec.details, false);
      show(rec.liveEmpty, running && figures.length === 0);
      show(rec.figuresEl, figures.length > 0);
    } else {
      show(rec.liveEmpty, false);
      if (rec.figuresEl.parentNode !== rec.details) rec.details.append(rec.figuresEl);
      show(rec.figuresEl, true);
      show(rec.details, figures.length > 0);
      setText(rec.summary, figures.length === 1 ? "1 figure" : figures.length + " figures");
      if (!rec.userToggled) {
        const open = rec.key === latestEndedKey;
        rec.autoOpen = open;
        if (rec.details.open !== open) rec.details.open = open;
      }
    }
  }

  function destroyRun(rec) {
    for (const figure of rec.figures.values()) figure.destroy();
    rec.figures.clear();
    rec.el.remove();
  }

  function renderRuns(runs) {
    const container = $("runs");
    const keys = [];
    const counts = new Map();
    let latestEndedKey = null;
    runs.forEach((run, i) => {
      const key = i + ":" + str(run.procedure);
      keys.push(key);
      const status = str(run.status);
      if (status && status !== "running" && !PENDING.has(status) && Array.isArray(run.figures) && run.figures.length) {
        latestEndedKey = key;
      }
      counts.set(status, (counts.get(status) || 0) + 1);
    });
    const nodes = [];
    runs.forEach((run, i) => {
      let rec = runRecords.get(keys[i]);
      if (!rec) {
        rec = newRunRecord(keys[i]);
        runRecords.set(keys[i], rec);
      }
      try {
        renderRun(rec, run, i, latestEndedKey);
      } catch (exc) {
        pageProblem("could not show run " + (i + 1) + " (" + str(run.procedure) + "): " + exc.message);
      }
      nodes.push(rec.el);
    });
    const wanted = new Set(keys);
    for (const [key, rec] of runRecords) {
      if (!wanted.has(key)) {
        destroyRun(rec);
        runRecords.delete(key);
      }
    }
    if (!nodes.length) {
      let empty = container.querySelector(":scope > p.empty");
      if (!empty) empty = h("p", "empty");
      setText(empty, "No runs in this directory yet.");
      nodes.push(empty);
    }
    placeChildren(container, nodes);
    const foldable = [...runRecords.values()].some((rec) => !rec.details.hidden);
    show($("expand-all"), foldable);
    show($("collapse-all"), foldable);
    const done = runs.filter((r) => !PENDING.has(str(r.status)) && str(r.status) !== "running").length;
    setText($("runs-count"), runs.length ? done + " of " + runs.length + " ended" : "");
  }

  function setAllOpen(open) {
    for (const rec of runRecords.values()) {
      if (rec.details.hidden) continue;
      rec.userToggled = true;
      rec.autoOpen = open;
      rec.details.open = open;
    }
  }

  // --- incidents ------------------------------------------------------------------------------
  const NEW_FOR_MS = 15000;
  const incidentItems = new Map(); // key -> {li, newUntil}

  function renderIncidents(incidents, firstRender) {
    const list = (Array.isArray(incidents) ? incidents : []).filter((x) => x && typeof x === "object");
    const occurrences = new Map();
    const keyed = list.map((inc) => {
      const base = [inc.unix_s, inc.procedure, inc.source, inc.text].map(str).join("\u0001");
      const n = (occurrences.get(base) || 0) + 1;
      occurrences.set(base, n);
      return [base + "\u0001" + n, inc];
    });
    const now = Date.now();
    const nodes = [];
    const wanted = new Set();
    for (let i = keyed.length - 1; i >= 0; i--) {
      const [key, inc] = keyed[i];
      wanted.add(key);
      let item = incidentItems.get(key);
      if (!item) {
        const li = h("li", "incident");
        const date = finite(inc.unix_s) ? new Date(inc.unix_s * 1000) : null;
        const time = h("time", "incident-time", date ? localTime(date) : "");
        if (date) time.dateTime = date.toISOString();
        const proc = h("span", "incident-proc", str(inc.procedure) || "campaign");
        const text = h("span", "incident-text", str(inc.text));
        li.append(time, proc, text);
        if (inc.source) li.title = "source: " + inc.source;
        setAttr(li, "data-procedure", str(inc.procedure));
        item = { li, newUntil: firstRender ? 0 : now + NEW_FOR_MS };
        incidentItems.set(key, item);
      }
      item.li.classList.toggle("new", item.newUntil > now);
      nodes.push(item.li);
    }
    for (const key of incidentItems.keys()) if (!wanted.has(key)) incidentItems.delete(key);
    placeChildren($("incidents"), nodes);
    show($("incidents-empty"), nodes.length === 0);
    setText($("incidents-count"), nodes.length ? String(nodes.length) : "");
  }

  function ageIncidents() {
    const now = Date.now();
    for (const item of incidentItems.values()) {
      if (item.newUntil && item.newUntil <= now) {
        item.newUntil = 0;
        item.li.classList.remove("new");
      }
    }
  }

  // --- campaign summary -----------------------------------------------------------------------
  /** What the page itself met (an unreadable state, a figure it could not draw): shown until
      the next state is rendered, which finds them again if they persist. */
  let pageProblems = [];

  function pageProblem(text) {
    if (!pageProblems.includes(text)) pageProblems.push(text);
    if (pageProblems.length > 5) pageProblems.shift();
    problemsKey = null;
    renderProblems(latest);
  }

  let problemsKey = null;

  function renderProblems(state) {
    const lines = [];
    if (state && Array.isArray(state.problems)) for (const p of state.problems) if (p) lines.push([str(p), "directory"]);
    if (state && Array.isArray(state.runs)) {
      state.runs.forEach((run, i) => {
        if (run && run.problem) lines.push([(i + 1) + ". " + str(run.procedure) + ": " + str(run.problem), "run"]);
      });
    }
    for (const p of pageProblems) lines.push(["page: " + p, "page"]);
    const key = JSON.stringify(lines);
    if (key === problemsKey) return;
    problemsKey = key;
    const box = $("problems");
    box.textContent = "";
    for (const [text, kind] of lines) box.append(h("div", "problem problem-" + kind, "\u26a0 " + text));
    show(box, lines.length > 0);
  }

  const STATE_TEXT = {
    stale: "The campaign's status stopped updating.",
    "no campaign": "No campaign in this directory yet: the page shows one as soon as it starts.",
  };

  function renderCampaign(state) {
    const c = state.campaign && typeof state.campaign === "object" ? state.campaign : {};
    const campaignState = str(c.state) || "no campaign";
    const dir = str(state.directory);
    // Marks keep the path's leading "/" in place in the right-to-left box that elides its start.
    setText($("directory"), dir ? "\u200e" + dir + "\u200e" : "\u00a0");
    setAttr($("directory"), "title", dir || null);
    setText($("station"), c.station || "\u2013");
    setText($("chip"), c.chip || "\u2013");
    setText($("seed"), c.seed == null ? "\u2013" : String(c.seed));
    setText($("process"), c.pid == null && !c.host ? "\u2013" : (str(c.host) || "?") + (c.pid == null ? "" : " pid " + c.pid));

    const badge = $("campaign-state");
    setText(badge, campaignState);
    badge.className = "state-badge state-" + slug(campaignState);
    document.body.dataset.campaignState = campaignState;

    const pos = Array.isArray(c.position) && c.position.length === 2 ? c.position : null;
    setText($("position"), pos ? "run " + pos[0] + " of " + pos[1] : "");
    const showMessageInBanner = campaignState === "stale" || campaignState === "no campaign";
    setText($("campaign-message"), showMessageInBanner ? "" : str(c.message));

    const banner = $("banner");
    if (showMessageInBanner) {
      banner.className = "banner banner-" + slug(campaignState);
      setText(banner, (campaignState === "stale" ? "\u26a0 stale: " : "") + (str(c.message) || STATE_TEXT[campaignState]));
      show(banner, true);
    } else if (connectionState !== "forbidden") {
      show(banner, false);
    }

    const bar = $("campaign-progress");
    const fraction = finite(c.fraction) ? c.fraction : null;
    setAttr(bar, "data-fraction", fraction == null ? "" : String(fraction));
    setAttr(bar, "aria-valuenow", fraction == null ? null : (fraction * 100).toFixed(1));
    bar.firstElementChild.style.width = ((fraction == null ? 0 : Math.min(1, Math.max(0, fraction))) * 100).toFixed(2) + "%";
    bar.className = "progress state-" + slug(campaignState);
    setText($("fraction-text"), percent(fraction));
    setText($("elapsed"), hms(c.elapsed_s));
    const left = finite(c.left_s) ? (campaignState === "running" ? "~" : "") + hms(c.left_s) : "\u2013";
    setText($("time-left"), left);

    const pct = fraction == null ? "" : " " + Math.floor(fraction * 100) + "%";
    const base = dir ? dir.replace(/\/+$/, "").split("/").pop() : "";
    document.title = campaignState + pct + (base ? " \u00b7 " + base : "") + " \u2014 nwlab watch";
  }

  // --- stop -----------------------------------------------------------------------------------
  let stopPending = false;
  let stopAsked = false;

  function renderStop(state) {
    const stop = state.stop && typeof state.stop === "object" ? state.stop : {};
    const button = $("stop-button");
    const running = state.campaign && state.campaign.state === "running";
    if (!running) stopAsked = false;
    show(button, !!stop.available);
    button.disabled = stopPending || stopAsked || connectionState !== "connected";
    setText(button, stopAsked ? "Stop requested" : "Request stop");
    setAttr(button, "title", !stop.available ? null : connectionState !== "connected" ? "not connected to the server"
      : "ask the campaign to stop, as Ctrl-C at its terminal does");
    const why = $("stop-why");
    const explain = !stop.available && running && !!stop.why_not;
    setText(why, explain ? "no stop button: " + str(stop.why_not) : "");
    show(why, explain);
  }

  function showStopAnswer(ok, message) {
    const answer = $("stop-answer");
    answer.className = ok ? "answer-ok" : "answer-error";
    setText(answer, message);
    show(answer, true);
  }

  async function requestStop() {
    const button = $("stop-button");
    if (stopPending || button.disabled) return;
    const dir = latest ? str(latest.directory) : "";
    const question = "Ask the campaign to stop?\n\n" + (dir ? dir + "\n\n" : "")
      + "It stops as with Ctrl-C at its terminal: the running run is ended and saved, the planned ones are not run.";
    if (!window.confirm(question)) return;
    stopPending = true;
    button.disabled = true;
    showStopAnswer(true, "asking the campaign to stop\u2026");
    let ok = false;
    let message = "";
    try {
      const response = await fetch(withToken("api/stop"), { method: "POST", cache: "no-store",
        headers: { Accept: "application/json" } });
      let body = null;
      try {
        body = await response.json();
      } catch (exc) {
        body = null;
      }
      if (body && typeof body === "object") {
        ok = !!body.ok && response.ok;
        message = str(body.message);
      }
      if (!message) {
        message = response.status === 403 || response.status === 401
          ? "refused: this link has no valid token" : response.ok ? "stop requested" : "the server answered HTTP " + response.status;
      }
    } catch (exc) {
      ok = false;
      message = "the server did not answer (" + exc.message + ")";
    }
    stopPending = false;
    stopAsked = ok;
    showStopAnswer(ok, message);
    if (latest) renderStop(latest);
    else button.disabled = false;
  }

  // --- the whole state ------------------------------------------------------------------------
  let latest = null; // the one state shown; nothing older is kept
  let updates = 0;
  let lastHeard = 0;

  function render(state) {
    if (!state || typeof state !== "object") return;
    const firstRender = updates === 0;
    latest = state;
    pageProblems = [];
    if (state.format && !/^nwlab-watch\/1(\.|$)/.test(str(state.format))) {
      pageProblem("this page reads nwlab-watch/1 states; the server sends " + str(state.format) + ": the page and the server are of different versions");
    }
    const parts = [
      ["the campaign", () => renderCampaign(state)],
      ["the stop button", () => renderStop(state)],
      ["the runs", () => renderRuns(Array.isArray(state.runs) ? state.runs.filter((r) => r && typeof r === "object") : [])],
      ["the incidents", () => renderIncidents(state.incidents, firstRender)],
    ];
    for (const [what, part] of parts) {
      try {
        part();
      } catch (exc) {
        pageProblem("could not show " + what + ": " + exc.message);
      }
    }
    renderProblems(state);
    updates += 1;
    document.body.dataset.updates = String(updates);
    lastHeard = Date.now();
    tick();
  }

  // --- connection -----------------------------------------------------------------------------
  let connectionState = "reconnecting";
  let source = null;
  let retryTimer = 0;
  let retryDelay = 1000;
  let downSince = 0;
  const SILENCE_MS = 60000;

  function setConnection(state) {
    connectionState = state;
    const node = $("connection");
    setAttr(node, "data-state", state);
    if (state === "reconnecting" && !downSince) downSince = Date.now();
    if (state === "connected") downSince = 0;
    if (latest) renderStop(latest);
    tick();
  }

  function forbidden() {
    setConnection("forbidden");
    if (source) source.close();
    source = null;
    const banner = $("banner");
    banner.className = "banner banner-forbidden";
    setText(banner, TOKEN
      ? "The server refused this link\u2019s token. Open the address that nwlab watch printed when it started (ending in ?token=\u2026): a restarted server has a new one."
      : "This link needs its token: open the address that nwlab watch printed when it started, ending in ?token=\u2026");
    show(banner, true);
    document.body.classList.add("forbidden");
    const waiting = $("runs").querySelector(":scope > p.empty");
    if (waiting && !runRecords.size) setText(waiting, "Nothing to show without the token.");
  }

  function openStream() {
    if (source) source.close();
    const es = new EventSource(withToken("events"));
    source = es;
    es.addEventListener("open", () => {
      if (source !== es) return;
      retryDelay = 1000;
      lastHeard = Date.now();
      setConnection("connected");
    });
    const onState = (event) => {
      if (source !== es) return;
      lastHeard = Date.now();
      if (connectionState !== "connected") setConnection("connected");
      const state = parseState(event.data);
      // An unnamed message is taken for a state only when it is one (not some keep-alive payload).
      if (state && (event.type === "state" || (typeof state === "object" && "campaign" in state))) render(state);
    };
    es.addEventListener("state", onState);
    es.addEventListener("message", onState);
    es.addEventListener("ping", () => {
      if (source !== es) return;
      lastHeard = Date.now();
      if (connectionState !== "connected") setConnection("connected");
    });
    es.addEventListener("error", () => {
      if (source !== es) return;
      if (es.readyState === EventSource.CLOSED) {
        // Not a dropped link (EventSource retries those itself) but a refusal: find out which.
        es.close();
        source = null;
        setConnection("reconnecting");
        probe();
      } else {
        setConnection("reconnecting");
      }
    });
  }

  async function probe() {
    const answer = await fetchState();
    if (answer.kind === "forbidden") {
      forbidden();
      return;
    }
    if (answer.kind === "ok") render(answer.state);
    window.clearTimeout(retryTimer);
    retryTimer = window.setTimeout(openStream, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 15000);
  }

  /** Once a second: the connection's words, the new incidents' highlight, a silent link. */
  function tick() {
    const text = $("connection-text");
    const now = Date.now();
    document.body.classList.toggle("offline", connectionState !== "connected" && updates > 0);
    if (connectionState === "connected") {
      const age = lastHeard ? Math.max(0, Math.round((now - lastHeard) / 1000)) : 0;
      setText(text, age <= 2 ? "live" : "live \u00b7 " + age + " s ago");
    } else if (connectionState === "forbidden") {
      setText(text, "link needs its token");
    } else if (updates === 0 && !downSince) {
      setText(text, "connecting\u2026");
    } else {
      const down = downSince ? Math.round((now - downSince) / 1000) : 0;
      setText(text, "reconnecting\u2026" + (down >= 3 ? " (" + hms(down) + ")" : ""));
    }
  }

  function everySecond() {
    tick();
    ageIncidents();
    if (connectionState === "connected" && source && Date.now() - lastHeard > SILENCE_MS) {
      setConnection("reconnecting");
      openStream();
    }
  }

  async function start() {
    $("stop-button").addEventListener("click", requestStop);
    $("expand-all").addEventListener("click", () => setAllOpen(true));
    $("collapse-all").addEventListener("click", () => setAllOpen(false));
    if (typeof uPlot !== "function") {
      pageProblem("the chart library (static/vendor/uplot) did not load");
      return;
    }
    setConnection("reconnecting");
    window.setInterval(everySecond, 1000);
    const answer = await fetchState();
    if (answer.kind === "forbidden") {
      forbidden();
      return;
    }
    if (answer.kind === "ok" && updates === 0) render(answer.state);
    openStream();
  }

  start();
})();
