// The gradserve playground: plain DOM code over the TypeScript client, served as ES modules by the same server
// (/playground/client/ is dist/client). Everything it shows comes from the public API.
import { GradserveClient, isGradserveClientError } from '/playground/client/index.js';
import { EXAMPLES } from '/playground/examples.js';

const $ = (id) => document.getElementById(id);
const ui = {
  example: $('example'), note: $('example-note'), operation: $('operation'), run: $('run'),
  graph: $('graph'), inputs: $('inputs'), fields: $('fields'), apiKey: $('api-key'),
  error: $('error'), status: $('status'), picture: $('picture'), caption: $('picture-caption'), results: $('results'),
};
const PASTE = 'paste';

function client() {
  const key = ui.apiKey.value.trim();
  return new GradserveClient({ baseUrl: window.location.origin, ...(key === '' ? {} : { apiKey: key }) });
}

const pretty = (v) => JSON.stringify(v, null, 1).replace(/\[\s+([^\[\]{}]*?)\s+\]/g, (_, inner) => `[${inner.replace(/\s+/g, ' ')}]`);
const numel = (shape) => shape.reduce((a, b) => a * b, 1);
const fmtShape = (shape) => `[${shape.join(', ')}]`;
const fmt = (v) => (Number.isInteger(v) ? String(v) : Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(3) : Number(v.toPrecision(5)).toString());

// ------------------------------------------------------------------------------------------- examples and fields

function fillExamples() {
  for (const ex of EXAMPLES) ui.example.add(new Option(ex.title, ex.id));
  ui.example.add(new Option('Paste a graph (keep the text below)', PASTE));
}

function currentExample() {
  return EXAMPLES.find((e) => e.id === ui.example.value);
}

function loadExample() {
  const ex = currentExample();
  if (ex === undefined) {
    ui.note.textContent = 'Edit the graph, inputs and fields; Run sends them as they are.';
    return;
  }
  ui.note.textContent = ex.note;
  ui.graph.value = pretty(ex.graph);
  ui.inputs.value = pretty(ex.inputs);
  ui.operation.value = ex.operation;
  loadFields();
}

/** The fields of the chosen operation: the example's, or a guess from the graph (its first output, all its inputs). */
function loadFields() {
  const ex = currentExample();
  const op = ui.operation.value;
  if (ex !== undefined) {
    ui.fields.value = pretty(ex.fields[op] ?? {});
    return;
  }
  let graph;
  try {
    graph = JSON.parse(ui.graph.value);
  } catch {
    return;
  }
  const out = graph.outputs?.[0] ?? graph.nodes?.at(-1)?.name;
  const ins = Object.keys(graph.inputs ?? {});
  const guess = { evaluate: {}, grad: { of: out, wrt: ins }, vjp: { cotangents: {}, wrt: ins }, jvp: { tangents: {}, of: [out] }, jacobian: { of: [out], wrt: ins }, hessian: { of: out, wrt: ins.slice(0, 1) } };
  ui.fields.value = pretty(guess[op]);
}

// ------------------------------------------------------------------------------------------------------- errors

function clearError() {
  ui.error.hidden = true;
  ui.error.replaceChildren();
  for (const t of [ui.graph, ui.inputs, ui.fields]) t.classList.remove('bad');
}

/** The text area a request path points into. */
function areaOf(path) {
  const head = path.split(/[.[]/)[0];
  if (head === 'graph' || head === 'model') return ui.graph;
  if (head === 'inputs') return ui.inputs;
  return ui.fields;
}

function showError(e, where) {
  const box = ui.error;
  box.replaceChildren();
  const head = document.createElement('strong');
  const items = [];
  if (isGradserveClientError(e)) {
    head.textContent = `${where}: ${e.status || ''} ${e.code}`.replace(/\s+/g, ' ');
    box.append(head, document.createTextNode(` ${e.detail}`));
    items.push(...e.errors);
  } else {
    head.textContent = `${where}:`;
    box.append(head, document.createTextNode(` ${e.message}`));
    if (e.path !== undefined) items.push({ path: e.path, message: e.message });
  }
  if (items.length > 0) {
    const ul = document.createElement('ul');
    for (const it of items) {
      const li = document.createElement('li');
      const code = document.createElement('code');
      code.className = 'path';
      code.textContent = it.path;
      li.append(code, document.createTextNode(` ${it.message}`));
      ul.append(li);
      areaOf(it.path).classList.add('bad');
    }
    box.append(ul);
  }
  box.hidden = false;
}

/** JSON of a text area, or an error pointing at it. */
function parseArea(area, path) {
  try {
    return JSON.parse(area.value);
  } catch (e) {
    const err = new Error(`${path} is not valid JSON: ${e.message}`);
    err.path = path;
    throw err;
  }
}

// ------------------------------------------------------------------------------------------------------ picture

/** What /v1/render draws beside the graph for an operation: the derivative graph that operation evaluates. */
function renderRequest(op, graph, f, parameters) {
  const base = { graph, ...(parameters.length > 0 ? { parameters } : {}) };
  switch (op) {
    case 'grad':
      return [{ ...base, transform: 'grad', of: f.of, wrt: f.wrt }, `grad of ${f.of}`];
    case 'vjp':
      return [{ ...base, transform: 'vjp', of: Object.keys(f.cotangents ?? {}), wrt: f.wrt }, 'vector-Jacobian product'];
    case 'jvp':
      return [{ ...base, transform: 'jvp', wrt: Object.keys(f.tangents ?? {}), ...(f.of === undefined ? {} : { of: f.of }) }, 'Jacobian-vector product'];
    case 'jacobian':
      return [{ ...base, transform: 'vjp', of: f.of, wrt: f.wrt }, 'the vjp whose rows make the Jacobian (reverse mode)'];
    case 'hessian':
      return [{ ...base, transform: 'grad', of: f.of, wrt: f.wrt }, 'the gradient graph, differentiated again for the Hessian'];
    default:
      return [base, 'forward graph'];
  }
}

async function drawPicture(gs, op, graph, f) {
  const parameters = (currentExample()?.parameters ?? []).filter((p) => Object.hasOwn(graph.inputs ?? {}, p));
  const [req, caption] = renderRequest(op, graph, f, parameters);
  ui.caption.textContent = caption;
  try {
    const svg = await gs.render(req);
    ui.picture.innerHTML = svg;
  } catch (e) {
    ui.picture.replaceChildren();
    showError(e, 'POST /v1/render');
  }
}

// ------------------------------------------------------------------------------------------------------ results

function valuesTable(t, key) {
  const table = document.createElement('table');
  table.className = 'values';
  table.dataset.tensor = key;
  table.dataset.shape = t.shape.join(',');
  const cols = t.shape.length === 0 ? 1 : t.shape.at(-1);
  const rows = cols === 0 ? 0 : t.data.length / cols;
  const shownRows = Math.min(rows, 64);
  const shownCols = Math.min(cols, 32);
  const lead = t.shape.slice(0, -1);
  for (let r = 0; r < shownRows; r++) {
    const tr = table.insertRow();
    if (lead.length > 0) {
      // the index of the row in the leading axes
      let rest = r;
      const idx = lead.map((_, k) => {
        const stride = numel(lead.slice(k + 1));
        const i = Math.floor(rest / stride);
        rest %= stride;
        return i;
      });
      const th = document.createElement('th');
      th.textContent = `[${idx.join(', ')}]`;
      tr.append(th);
    }
    for (let c = 0; c < shownCols; c++) {
      const v = Number(t.data[r * cols + c]);
      const td = tr.insertCell();
      td.textContent = fmt(v);
      td.dataset.value = String(v);
    }
  }
  return table;
}

function tensorBlock(title, t, key) {
  const div = document.createElement('div');
  div.className = 'tensor';
  const h = document.createElement('h3');
  h.textContent = `${title}  ${fmtShape(t.shape)} ${t.datatype}`;
  div.append(h, valuesTable(t, key));
  if (t.data.length > 64 * 32) {
    const p = document.createElement('p');
    p.className = 'note';
    p.textContent = `${t.data.length} values; the table shows the first rows and columns.`;
    div.append(p);
  }
  return div;
}

/** Diverging colour for v in [-1, 1]: blue (negative), white (0), red (positive). */
function colour(v) {
  const a = Math.min(1, Math.abs(v));
  const [r, g, b] = v < 0 ? [37, 99, 235] : [220, 38, 38];
  const mix = (c) => Math.round(255 + (c - 255) * a);
  return `rgb(${mix(r)}, ${mix(g)}, ${mix(b)})`;
}

/**
 * A Jacobian or Hessian block as a matrix: rows are the elements of the first value (row-major over its shape),
 * columns the elements of the second; the tensor's shape is the concatenation of the two shapes.
 */
function heatmap(t, key, rowName, rowShape, colName, colShape, what) {
  const rows = numel(rowShape);
  const cols = numel(colShape);
  const wrap = document.createElement('div');
  wrap.className = 'tensor';
  const h = document.createElement('h3');
  h.textContent = `${key}  ${fmtShape(t.shape)} ${t.datatype}`;
  const box = document.createElement('div');
  box.className = 'heatmap';
  const cell = Math.max(2, Math.min(28, Math.floor(360 / Math.max(rows, cols, 1))));
  const canvas = document.createElement('canvas');
  canvas.width = Math.max(1, cols * cell);
  canvas.height = Math.max(1, rows * cell);
  canvas.dataset.tensor = key;
  canvas.setAttribute('role', 'img');
  let max = 0;
  for (const v of t.data) max = Math.max(max, Math.abs(Number(v)));
  const ctx = canvas.getContext('2d');
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      ctx.fillStyle = colour(max === 0 ? 0 : Number(t.data[r * cols + c]) / max);
      ctx.fillRect(c * cell, r * cell, cell, cell);
    }
  }
  canvas.setAttribute('aria-label', `${what} heatmap of ${rows} by ${cols}`);
  const explain = document.createElement('div');
  explain.className = 'explain';
  explain.innerHTML = '';
  const p1 = document.createElement('p');
  p1.textContent = `${what}: shape ${fmtShape(rowShape)} ++ ${fmtShape(colShape)} = ${fmtShape(t.shape)} (${rowName}.shape ++ ${colName}.shape).`;
  const p2 = document.createElement('p');
  p2.textContent = `Drawn as a ${rows} × ${cols} matrix: row i is element i of ${rowName}, column j element j of ${colName}, both counted row-major. Red is positive, blue negative, white 0; the strongest colour is |${max === 0 ? 0 : fmt(max)}|.`;
  const readout = document.createElement('p');
  readout.className = 'readout';
  canvas.addEventListener('mousemove', (ev) => {
    const c = Math.floor(ev.offsetX / cell);
    const r = Math.floor(ev.offsetY / cell);
    if (r < 0 || c < 0 || r >= rows || c >= cols) return;
    readout.textContent = `row ${r}, column ${c}: ${fmt(Number(t.data[r * cols + c]))}`;
  });
  explain.append(p1, p2, readout);
  box.append(canvas, explain);
  wrap.append(h, box);
  return wrap;
}

/** A heatmap's numbers, folded away under it. */
function valuesOf(block) {
  const d = document.createElement('details');
  d.className = 'values-of';
  const s = document.createElement('summary');
  s.textContent = 'the values';
  d.append(s, block);
  return d;
}

function section(title) {
  const h = document.createElement('h3');
  h.textContent = title;
  h.className = 'group';
  return h;
}

function showResults(op, res, shapes) {
  const out = [];
  const group = (title, map, prefix) => {
    const entries = Object.entries(map ?? {});
    if (entries.length === 0) return;
    out.push(section(title));
    for (const [k, t] of entries) out.push(tensorBlock(`${prefix}${k}`, t, `${prefix}${k}`));
  };
  group('Outputs', res.outputs, 'outputs.');
  if (op === 'grad' || op === 'vjp') group('Gradients', res.gradients, 'gradients.');
  if (op === 'jvp') group('Tangents', res.tangents, 'tangents.');
  if (op === 'jacobian') {
    out.push(section(`Jacobians (${res.mode} mode)`));
    for (const [of, byWrt] of Object.entries(res.jacobians)) {
      for (const [wrt, t] of Object.entries(byWrt)) {
        const rowShape = shapes[of] ?? t.shape.slice(0, t.shape.length - (shapes[wrt]?.length ?? 0));
        const colShape = t.shape.slice(rowShape.length);
        out.push(heatmap(t, `jacobians.${of}.${wrt}`, of, rowShape, wrt, colShape, `∂${of}/∂${wrt}`));
        out.push(valuesOf(tensorBlock(`jacobians.${of}.${wrt}`, t, `jacobians.${of}.${wrt}`)));
      }
    }
  }
  if (op === 'hessian') {
    out.push(section('Hessians'));
    for (const [a, byB] of Object.entries(res.hessians)) {
      for (const [b, t] of Object.entries(byB)) {
        const rowShape = shapes[a] ?? [];
        const colShape = t.shape.slice(rowShape.length);
        out.push(heatmap(t, `hessians.${a}.${b}`, a, rowShape, b, colShape, `∂²/∂${a}∂${b}`));
        out.push(valuesOf(tensorBlock(`hessians.${a}.${b}`, t, `hessians.${a}.${b}`)));
      }
    }
  }
  ui.results.replaceChildren(...out);
}

// ---------------------------------------------------------------------------------------------------------- run

async function run() {
  clearError();
  ui.run.disabled = true;
  document.body.dataset.state = 'running';
  const op = ui.operation.value;
  const gs = client();
  try {
    let graph;
    let inputs;
    let f;
    try {
      graph = parseArea(ui.graph, 'graph');
      inputs = parseArea(ui.inputs, 'inputs');
      f = parseArea(ui.fields, 'fields');
    } catch (e) {
      showError(e, 'in this page');
      return;
    }
    const started = performance.now();
    const picture = drawPicture(gs, op, graph, f);
    const body = { graph, inputs, ...f };
    let res;
    try {
      res = await gs[op](body);
    } catch (e) {
      showError(e, `POST /v1/${op}`);
      ui.results.replaceChildren();
      return;
    } finally {
      await picture;
    }
    // The value shapes, to split a Jacobian's or Hessian's shape into its two halves.
    const shapes = {};
    for (const [k, t] of Object.entries(res.outputs ?? {})) shapes[k] = t.shape;
    for (const [k, v] of Object.entries(inputs)) {
      let s = [];
      for (let cur = v; Array.isArray(cur); cur = cur[0]) s.push(cur.length);
      shapes[k] = s;
    }
    showResults(op, res, shapes);
    ui.status.textContent = `${op}: answered in ${Math.round(performance.now() - started)} ms`;
  } finally {
    ui.run.disabled = false;
    document.body.dataset.state = 'done';
  }
}

// --------------------------------------------------------------------------------------------------------- start

fillExamples();
/** Draws the graph as the text areas hold it (nothing when they do not parse yet). */
function redraw() {
  try {
    return drawPicture(client(), ui.operation.value, JSON.parse(ui.graph.value), JSON.parse(ui.fields.value));
  } catch {
    return Promise.resolve();
  }
}
ui.example.addEventListener('change', () => {
  clearError();
  loadExample();
  void redraw();
});
ui.operation.addEventListener('change', loadFields);
ui.run.addEventListener('click', () => void run());
loadExample();
redraw().finally(() => {
  document.body.dataset.ready = 'true';
});
