// The interactive page: pictures drawn by Graphviz, data from rnn-composer (no requests).
"use strict";
const DATA = JSON.parse(document.getElementById("data").textContent);
const foldedView = document.getElementById("folded-view");
const unfoldedView = document.getElementById("unfolded-view");
const slider = document.getElementById("steps");
const stepsValue = document.getElementById("steps-value");
const statusLine = document.getElementById("status");
const tip = document.getElementById("tip");
let drawing = null;
let selected = null;  // the folded vector or weight whose copies are shaded

function vectorOf(id) { return id.slice(0, id.lastIndexOf("@")); }
function stepOf(id) { return Number(id.slice(id.lastIndexOf("@") + 1)); }
function byId(root, id) {
  for (const g of root.querySelectorAll("g.node, g.edge")) { if (g.id === id) return g; }
  return null;
}

function describe(id) {
  const info = DATA.info.vectors[vectorOf(id)];
  if (!info) return id;
  const t = stepOf(id);
  const when = t < 0 || t >= drawing.T ? "initial state" : `step ${t}`;
  const steps = info.steps[String(drawing.T)];
  return `${info.name} at ${when}: ${info.role}, size ${info.size}\n${info.formula}\n` +
    `computed at steps ${steps} (T = ${drawing.T})`;
}

function describeVector(name) {
  const info = DATA.info.vectors[name];
  if (!info) return name;
  return `${info.name}: ${info.role}, size ${info.size}\n${info.formula}`;
}

function describeWeights(keys) {
  return keys.map(k => `${k}: ${DATA.info.weights[k].join("×")}`).join("\n");
}

function clear() {
  selected = null;
  for (const root of [foldedView, unfoldedView]) {
    for (const g of root.querySelectorAll(".anc, .desc, .sel, .copy, .faded")) {
      g.classList.remove("anc", "desc", "sel", "copy", "faded");
    }
  }
  statusLine.textContent = "";
}

function closure(start, forward) {
  const next = new Map();
  for (const [tail, head] of drawing.edges) {
    const [a, b] = forward ? [tail, head] : [head, tail];
    if (!next.has(a)) next.set(a, []);
    next.get(a).push(b);
  }
  const seen = new Set([start]);
  const stack = [start];
  while (stack.length) {
    for (const n of next.get(stack.pop()) || []) {
      if (!seen.has(n)) { seen.add(n); stack.push(n); }
    }
  }
  seen.delete(start);
  return seen;
}

function ancestors(index) {
  if (drawing.cones) {
    return new Set(drawing.cones[drawing.nodes[index]].filter(i => i !== index));
  }
  return closure(index, false);
}

function descendants(index) {
  if (drawing.cones) {
    const found = new Set();
    drawing.nodes.forEach((id, i) => {
      if (i !== index && drawing.cones[id].includes(index)) found.add(i);
    });
    return found;
  }
  return closure(index, true);
}

function selectNode(id) {
  clear();
  const index = drawing.nodes.indexOf(id);
  if (index < 0) return;
  const up = ancestors(index), down = descendants(index);
  for (const g of unfoldedView.querySelectorAll("g.node")) {
    const i = drawing.nodes.indexOf(g.id);
    if (i === index) g.classList.add("sel", "anc");
    else if (up.has(i)) g.classList.add("anc");
    else if (down.has(i)) g.classList.add("desc");
    else if (i >= 0) g.classList.add("faded");
  }
  const names = drawing.nodes;
  for (const [tail, head] of drawing.edges) {
    const g = byId(unfoldedView, `${names[tail]}->${names[head]}`);
    if (!g) continue;
    if ((up.has(tail) || tail === index) && (up.has(head) || head === index)) g.classList.add("anc");
    else if ((down.has(tail) || tail === index) && down.has(head)) g.classList.add("desc");
  }
  // what it depends on, as `deps` writes it, over every step (drawn or elided)
  const deps = drawing.deps[id] || `${vectorOf(id)}[${stepOf(id)}] <- (no input)`;
  statusLine.textContent = `${deps}; shaded: ${up.size} nodes it depends on, ` +
    `${down.size} that depend on it`;
}

function selectFolded(g) {
  clear();
  selected = g;
  g.classList.add("copy");
  if (g.classList.contains("node")) {
    let count = 0;
    for (const u of unfoldedView.querySelectorAll("g.node")) {
      if (u.id.includes("@") && vectorOf(u.id) === g.id) { u.classList.add("copy"); count++; }
    }
    statusLine.textContent = `${g.id}: ${count} copies at T = ${drawing.T}`;
    return;
  }
  const weights = DATA.foldedEdges[g.id] || [];
  let count = 0;
  for (const [tail, head, weight] of drawing.edges) {
    if (!weights.includes(weight)) continue;
    const u = byId(unfoldedView, `${drawing.nodes[tail]}->${drawing.nodes[head]}`);
    if (u) { u.classList.add("copy"); count++; }
  }
  statusLine.textContent = `${weights.join(", ") || "no weight"}: shared by ${count} edges at T = ${drawing.T}`;
}

function showTip(event, text) {
  tip.textContent = text;
  tip.hidden = false;
  const box = tip.getBoundingClientRect();
  // beside the thing described, not over it: right of it, else left, else below; inside
  // the window
  const near = event.currentTarget && event.currentTarget.getBoundingClientRect
    ? event.currentTarget.getBoundingClientRect()
    : { left: event.clientX, right: event.clientX, top: event.clientY, bottom: event.clientY };
  let x = near.right + 8, y = event.clientY + 8;
  if (x + box.width > window.innerWidth) x = near.left - 8 - box.width;
  if (x < 0) { x = Math.min(event.clientX, window.innerWidth - box.width); y = near.bottom + 8; }
  if (y + box.height > window.innerHeight) y = Math.max(0, near.top - 8 - box.height);
  tip.style.left = `${Math.max(0, x)}px`;
  tip.style.top = `${Math.max(0, y)}px`;
}

let zoom = null;  // null: fit the width; else a scale of the drawing's own size

function applyZoom() {
  const svg = unfoldedView.querySelector("svg");
  if (!svg) return;
  unfoldedView.classList.toggle("zoomed", zoom !== null);
  if (zoom === null) { svg.style.width = ""; return; }
  const natural = svg.viewBox.baseVal.width * 4 / 3;  // points to CSS pixels
  svg.style.width = `${Math.round(natural * zoom)}px`;
}

function zoomBy(factor) {
  const svg = unfoldedView.querySelector("svg");
  const natural = svg.viewBox.baseVal.width * 4 / 3;
  const now = zoom === null ? svg.getBoundingClientRect().width / natural : zoom;
  zoom = Math.min(8, Math.max(0.25, now * factor));
  applyZoom();
}

function label(g, text) {
  let title = g.querySelector("title");
  if (!title) { title = document.createElementNS("http://www.w3.org/2000/svg", "title"); g.prepend(title); }
  title.textContent = text;
  g.setAttribute("aria-label", text.split("\n")[0]);
}

function heat(g, numbers, scale) {
  const shape = g.querySelector("ellipse, polygon, path");
  if (!shape || !numbers) return;
  const box = shape.getBBox();
  const n = numbers.length, width = Math.min(6, (box.width - 4) / n), height = 5;
  const x0 = box.x + (box.width - n * width) / 2, y0 = box.y + box.height + 1;
  scale = scale || 1;
  numbers.forEach((v, k) => {
    const r = document.createElementNS("http://www.w3.org/2000/svg", "rect");
    const a = Math.max(-1, Math.min(1, v / scale));
    const c = a >= 0 ? `rgb(255,${Math.round(255 * (1 - a))},${Math.round(255 * (1 - a))})`
      : `rgb(${Math.round(255 * (1 + a))},${Math.round(255 * (1 + a))},255)`;
    r.setAttribute("x", x0 + k * width); r.setAttribute("y", y0);
    r.setAttribute("width", width); r.setAttribute("height", height);
    r.setAttribute("fill", c); r.setAttribute("stroke", "#9ca3af"); r.setAttribute("stroke-width", "0.3");
    r.setAttribute("class", "cell");
    const info = DATA.info.vectors[vectorOf(g.id)];
    const said = `${info ? info.name : vectorOf(g.id)}[${stepOf(g.id)}], unit ${k}: ${v}`;
    const title = document.createElementNS("http://www.w3.org/2000/svg", "title");
    title.textContent = said;
    r.appendChild(title);
    r.addEventListener("mousemove", e => { e.stopPropagation(); showTip(e, said); });
    g.appendChild(r);
  });
}

function showSteps(steps) {
  const again = selected;  // a folded selection carries over to the new T
  clear();
  tip.hidden = true;  // its node is gone with the old drawing
  drawing = DATA.drawings.find(d => d.T === steps) || DATA.drawings[DATA.drawings.length - 1];
  unfoldedView.innerHTML = drawing.svg;
  stepsValue.textContent = String(drawing.T);
  slider.value = String(DATA.drawings.indexOf(drawing));
  const svg = unfoldedView.querySelector("svg");
  svg.setAttribute("role", "group");
  svg.setAttribute("aria-label", `the network unfolded over T = ${drawing.T} steps`);
  for (const g of unfoldedView.querySelectorAll("g.node")) {
    if (!g.id.includes("@")) continue;
    const text = describe(g.id);
    label(g, text);
    const info = DATA.info.vectors[vectorOf(g.id)];
    if (info && info.role === "output") { g.setAttribute("tabindex", "0"); g.setAttribute("role", "button"); }
    g.addEventListener("click", () => selectNode(g.id));
    g.addEventListener("keydown", e => {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); selectNode(g.id); }
    });
    g.addEventListener("mousemove", e => showTip(e, text));
    g.addEventListener("mouseleave", () => { tip.hidden = true; });
    const traced = DATA.values && DATA.values[String(drawing.T)];  // values at this T, if run
    if (traced) heat(g, traced.cells[g.id], traced.scale);
  }
  for (const g of unfoldedView.querySelectorAll("g.edge")) {
    const ends = g.id.split("->");
    const edge = drawing.edges.find(([a, b]) => drawing.nodes[a] === ends[0] && drawing.nodes[b] === ends[1]);
    if (!edge || !edge[2]) continue;
    const text = describeWeights([edge[2]]);
    label(g, text);
    g.addEventListener("mousemove", e => showTip(e, text));
    g.addEventListener("mouseleave", () => { tip.hidden = true; });
  }
  document.querySelector("main").classList.toggle("wide", drawing.T >= 10);
  applyZoom();
  if (again) selectFolded(again);
}

function setUp() {
  foldedView.innerHTML = DATA.folded;
  const svg = foldedView.querySelector("svg");
  svg.setAttribute("role", "group");
  svg.setAttribute("aria-label", "the folded network");
  for (const g of foldedView.querySelectorAll("g.node, g.edge")) {
    const weights = DATA.foldedEdges[g.id];
    const text = g.classList.contains("node") ? describeVector(g.id) : (weights ? describeWeights(weights) : g.id);
    label(g, text);
    g.setAttribute("tabindex", "0");
    g.addEventListener("click", () => selectFolded(g));
    g.addEventListener("keydown", e => {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); selectFolded(g); }
    });
    g.addEventListener("mousemove", e => showTip(e, text));
    g.addEventListener("mouseleave", () => { tip.hidden = true; });
  }
  slider.min = "0";
  slider.max = String(DATA.drawings.length - 1);
  slider.step = "1";
  slider.addEventListener("input", () => showSteps(DATA.drawings[Number(slider.value)].T));
  document.addEventListener("keydown", e => {
    if (e.key === "Escape") clear();
    if (e.target === slider) return;
    if (e.key === "+" || e.key === "=") zoomBy(1.25);
    if (e.key === "-") zoomBy(0.8);
    if (e.key === "0") { zoom = null; applyZoom(); }
  });
  document.getElementById("zoom-in").addEventListener("click", () => zoomBy(1.25));
  document.getElementById("zoom-out").addEventListener("click", () => zoomBy(0.8));
  document.getElementById("zoom-fit").addEventListener("click", () => { zoom = null; applyZoom(); });
  showSteps(DATA.start);
}

setUp();
