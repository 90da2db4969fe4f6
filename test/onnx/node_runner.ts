/**
 * Runs one ONNX backend node test (the test data Debian ships in libonnx-testdata) through the importer and the
 * engine: the imported graph's outputs against the expected ones, then, for floating-point outputs, its gradient
 * against central finite differences in FP64 along a random direction (one VJP against two more evaluations).
 *
 * Inputs that are not floating point (Reshape's shape, Gather's indices, TopK's K, ...) are given to the importer as
 * static values, as an exporter writes them (initializers or Constant nodes). When the import still needs a
 * floating-point input at import time (a Pad value, Range bounds), every input is made static and only the forward
 * values are compared.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { evaluate, grad } from '../../src/index.js';
import { promoteGraph, promoteInputs } from '../../src/engine/gradcheck.js';
import type { Graph } from '../../src/graph/types.js';
import { decodeModel, decodeTensorProto } from '../../src/onnx/decode.js';
import { importOnnx } from '../../src/onnx/import.js';
import { tensorFromProto } from '../../src/onnx/tensors.js';
import type { Tensor } from '../../src/tensor/tensor.js';

export const NODE_DATA = '/usr/share/libonnx-testdata/data/node';

export function nodeTestsAvailable(): boolean {
  return existsSync(NODE_DATA);
}

export function listNodeTests(): string[] {
  return readdirSync(NODE_DATA).filter((d) => existsSync(path.join(NODE_DATA, d, 'model.onnx'))).sort();
}

/** The op types a test's model uses. */
export function opTypesOf(test: string): string[] {
  const model = decodeModel(readFileSync(path.join(NODE_DATA, test, 'model.onnx')));
  return [...new Set((model.graph?.node ?? []).map((n) => n.op_type ?? ''))];
}

export interface NodeTestResult {
  test: string;
  ok: boolean;
  stage: 'import' | 'forward' | 'gradient' | 'pass';
  message?: string;
  gradient?: boolean;
}

function readSet(dir: string, prefix: string): Tensor[] {
  return readdirSync(dir)
    .filter((f) => f.startsWith(prefix) && f.endsWith('.pb'))
    .sort((a, b) => Number(a.replace(/\D/g, '')) - Number(b.replace(/\D/g, '')))
    .map((f) => tensorFromProto(decodeTensorProto(readFileSync(path.join(dir, f)))).tensor);
}

const isFloat = (t: Tensor) => t.dtype === 'FP32' || t.dtype === 'FP64';

function values(t: Tensor): number[] {
  return Array.from(t.data as ArrayLike<number | bigint>, (v) => Number(v));
}

function compare(name: string, got: Tensor, want: Tensor): string | undefined {
  if (got.shape.join(',') !== want.shape.join(',')) return `${name}: shape [${got.shape.join(', ')}], expected [${want.shape.join(', ')}]`;
  if (got.dtype !== want.dtype) return `${name}: ${got.dtype}, expected ${want.dtype}`;
  const a = values(got);
  const b = values(want);
  const [rtol, atol] = got.dtype === 'FP32' ? [1e-3, 1e-5] : [1e-7, 1e-9];
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (Number.isNaN(x) && Number.isNaN(y)) continue;
    if (x === y) continue;
    if (!(Math.abs(x - y) <= atol + rtol * Math.abs(y))) return `${name}[${i}]: ${x}, expected ${y}`;
  }
  return undefined;
}

/** A deterministic pseudo-random stream (the same numbers on every run). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

/** loss = sum_k <c_k, out_k> over the float outputs, with fixed random c_k: a scalar to differentiate. */
function withLoss(graph: Graph, outputs: Record<string, Tensor>, r: () => number): Graph {
  const nodes = [...graph.nodes];
  const constants = { ...(graph.constants ?? {}) };
  const terms: string[] = [];
  for (const [name, t] of Object.entries(outputs)) {
    if (!isFloat(t) || t.data.length === 0) continue;
    const c = `__c_${terms.length}`;
    constants[c] = { shape: [...t.shape], datatype: t.dtype, data: Array.from({ length: t.data.length }, r) };
    nodes.push({ name: `${c}_m`, op: 'mul', inputs: [name, c] });
    nodes.push({ name: `${c}_s`, op: 'sum', inputs: [`${c}_m`] });
    if (t.dtype === 'FP32') nodes.push({ name: `${c}_d`, op: 'cast', inputs: [`${c}_s`], attrs: { to: 'FP64' } });
    terms.push(t.dtype === 'FP32' ? `${c}_d` : `${c}_s`);
  }
  if (terms.length === 0) return { ...graph, nodes: [...nodes, { name: '__loss', op: 'sum', inputs: [Object.keys(outputs)[0]!] }], outputs: ['__loss'] };
  let acc = terms[0]!;
  terms.slice(1).forEach((t, i) => {
    nodes.push({ name: `__acc_${i}`, op: 'add', inputs: [acc, t] });
    acc = `__acc_${i}`;
  });
  nodes.push({ name: '__loss', op: 'identity', inputs: [acc] });
  return { ...graph, constants, nodes, outputs: ['__loss'] };
}

async function lossAt(graph: Graph, inputs: Record<string, Tensor>): Promise<number> {
  const r = await evaluate(graph, inputs, ['__loss']);
  return Number(r.outputs.__loss!.data[0]);
}

export async function runNodeTest(test: string, opts: { gradient?: boolean } = {}): Promise<NodeTestResult> {
  const dir = path.join(NODE_DATA, test);
  const bytes = readFileSync(path.join(dir, 'model.onnx'));
  const model = decodeModel(bytes);
  const inputNames = (model.graph?.input ?? []).map((i) => i.name ?? '').filter((n) => !(model.graph?.initializer ?? []).some((t) => t.name === n));
  const outputNames = (model.graph?.output ?? []).map((o) => o.name ?? '');
  const set = path.join(dir, 'test_data_set_0');
  let ins: Tensor[], outs: Tensor[];
  try {
    ins = readSet(set, 'input_');
    outs = readSet(set, 'output_');
  } catch (e) {
    return { test, ok: false, stage: 'import', message: `test data: ${(e as Error).message}` };
  }
  const given: Record<string, Tensor> = {};
  // Optional inputs left out are written as '' in the node but absent from the data: pair names and files in order.
  inputNames.slice(0, ins.length).forEach((n, i) => { given[n] = ins[i]!; });

  let imported: ReturnType<typeof importOnnx> | undefined;
  let runtime: Record<string, Tensor> = {};
  let firstError = '';
  for (const freezeAll of [false, true]) {
    const statics: Record<string, Tensor> = {};
    runtime = {};
    for (const [n, t] of Object.entries(given)) {
      if (freezeAll || !isFloat(t)) statics[n] = t;
      else runtime[n] = t;
    }
    try {
      imported = importOnnx(bytes, { staticInputs: statics });
      break;
    } catch (e) {
      firstError ||= (e as { message: string }).message;
      if (freezeAll) return { test, ok: false, stage: 'import', message: firstError };
    }
  }
  const { graph, parameters } = imported!;
  const inputs = { ...parameters, ...runtime };
  let got: Record<string, Tensor>;
  try {
    got = (await evaluate(graph, inputs, outputNames)).outputs;
  } catch (e) {
    return { test, ok: false, stage: 'forward', message: (e as Error).message };
  }
  for (const [i, name] of outputNames.entries()) {
    const want = outs[i];
    if (want === undefined) continue;
    const problem = compare(name, got[name]!, want);
    if (problem !== undefined) return { test, ok: false, stage: 'forward', message: problem };
  }

  const wrt = Object.keys(inputs).filter((n) => isFloat(inputs[n]!) && inputs[n]!.data.length > 0);
  const floatOuts = Object.values(got).filter((t) => isFloat(t) && t.data.length > 0);
  // Non-finite outputs (pow of a negative base, log of a negative) give no finite difference to compare with.
  const finite = floatOuts.every((t) => (t.data as Float32Array).every((v) => Number.isFinite(v)));
  if (opts.gradient === false || wrt.length === 0 || floatOuts.length === 0 || !finite) return { test, ok: true, stage: 'pass', gradient: false };
  const r = rng(test.length * 7919 + test.charCodeAt(5));
  const g64 = promoteGraph(withLoss(graph, got, r));
  const x64 = promoteInputs(inputs);
  try {
    const analytic = await grad(g64, x64, '__loss', wrt);
    const dirs: Record<string, Float64Array> = {};
    let predicted = 0;
    let scale = 0;
    for (const n of wrt) {
      const v = Float64Array.from({ length: x64[n]!.data.length }, r);
      dirs[n] = v;
      const gv = analytic.gradients[n]!.data as Float64Array;
      for (let i = 0; i < v.length; i++) {
        predicted += gv[i]! * v[i]!;
        scale += Math.abs(gv[i]! * v[i]!);
      }
    }
    const eps = 1e-6;
    const shifted = (sign: number) => {
      const o: Record<string, Tensor> = { ...x64 };
      for (const n of wrt) {
        const base = x64[n]!.data as Float64Array;
        o[n] = { dtype: 'FP64', shape: x64[n]!.shape, data: base.map((b, i) => b + sign * eps * dirs[n]![i]!) };
      }
      return o;
    };
    const up = await lossAt(g64, shifted(1));
    const down = await lossAt(g64, shifted(-1));
    const numeric = (up - down) / (2 * eps);
    const close = (a: number, b: number) => Math.abs(a - b) <= 1e-5 + 1e-3 * Math.max(Math.abs(b), scale * 1e-3);
    // At the edge of a domain (acosh'(1) is infinite, pow of a negative base) there is no finite difference.
    if (!Number.isFinite(predicted) || Number.isNaN(numeric)) return { test, ok: true, stage: 'pass', gradient: false, message: 'at the edge of the domain' };
    if (!close(predicted, numeric)) {
      // At a kink or a tie the central difference averages the two one-sided slopes, and the analytic derivative is
      // one of them (PyTorch's convention) or between them (ties split): accepted when it lies between the one-sided
      // differences. A jump (floor at an integer, a threshold hit exactly) gives a difference quotient that grows
      // like 1/eps: there the derivative is not checked.
      const at = await lossAt(g64, x64);
      const right = (up - at) / eps;
      const left = (at - down) / eps;
      const jump = Math.abs(right - left) > 1e3 * (1 + scale) || Math.abs(numeric) > 1e3 * (1 + scale);
      const between = predicted >= Math.min(left, right) - 1e-5 - 1e-3 * Math.abs(left) && predicted <= Math.max(left, right) + 1e-5 + 1e-3 * Math.abs(right);
      if (jump) return { test, ok: true, stage: 'pass', gradient: false, message: 'discontinuous at the test point' };
      if (!between) return { test, ok: false, stage: 'gradient', message: `directional derivative ${predicted}, finite differences ${numeric} (one-sided ${left}, ${right})` };
    }
  } catch (e) {
    return { test, ok: false, stage: 'gradient', message: (e as Error).message };
  }
  return { test, ok: true, stage: 'pass', gradient: true };
}
