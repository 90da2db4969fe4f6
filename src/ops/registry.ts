/**
 * The op registry: every OpDef exported by a family file, collected by looking at the modules' exports (a family file
 * adds an op by exporting it; nothing here lists ops by hand). `ALL_OPS` keeps every definition found so a test can
 * assert that no two share a name; `OPS` maps name -> definition.
 */
import { z } from 'zod';
import type { OpCatalogueEntry } from '../engine.types.js';
import type { OpDef } from './types.js';
import * as activations from './activations.js';
import * as batchNormGrad from './batch_norm_grad.js';
import * as binary from './binary.js';
import * as binaryMath from './binary_math.js';
import * as conv from './conv.js';
import * as cumulative from './cumulative.js';
import * as einsum from './einsum.js';
import * as indexing from './indexing.js';
import * as internal from './internal.js';
import * as linalg from './linalg.js';
import * as linalgFactor from './linalg_factor.js';
import * as linalgSolve from './linalg_solve.js';
// linear algebra: spectral decompositions and QR
import * as linalgQr from './linalg_qr.js';
import * as linalgSpectral from './linalg_spectral.js';
import * as logical from './logical.js';
import * as misc from './misc.js';
import * as nn from './nn.js';
import * as norm from './norm.js';
import * as pool from './pool.js';
import * as reduce from './reduce.js';
import * as select from './select.js';
import * as shape from './shape.js';
import * as shapeIndex from './shape_index.js';
import * as stats from './stats.js';
import * as unary from './unary.js';
import * as unaryMath from './unary_math.js';

const FAMILIES: Record<string, unknown>[] = [
  internal, unary, binary, select, misc, reduce, linalg, shape, shapeIndex, nn, pool, norm, batchNormGrad,
  unaryMath, activations, binaryMath, logical, indexing,
  stats, cumulative, einsum, conv,
  // linear algebra: solves and factorizations
  linalgSolve, linalgFactor,
  // linear algebra: spectral decompositions and QR
  linalgSpectral, linalgQr,
];

function isOpDef(v: unknown): v is OpDef {
  return (
    typeof v === 'object' && v !== null && typeof (v as OpDef).name === 'string' &&
    typeof (v as OpDef).infer === 'function' && typeof (v as OpDef).run === 'function'
  );
}

function collect(families: Record<string, unknown>[]): OpDef[] {
  const seen = new Set<OpDef>();
  const out: OpDef[] = [];
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(visit);
    else if (isOpDef(v) && !seen.has(v)) {
      seen.add(v);
      out.push(v);
    }
  };
  for (const m of families) Object.values(m).forEach(visit);
  return out;
}

export const ALL_OPS: readonly OpDef[] = collect(FAMILIES);

export const OPS: ReadonlyMap<string, OpDef> = new Map(ALL_OPS.map((op) => [op.name, op]));

export function getOp(name: string): OpDef | undefined {
  return OPS.get(name);
}

/** Names defined more than once (must be empty). */
export function duplicateOpNames(): string[] {
  const count = new Map<string, number>();
  for (const op of ALL_OPS) count.set(op.name, (count.get(op.name) ?? 0) + 1);
  return [...count].filter(([, n]) => n > 1).map(([name]) => name);
}

let catalogue: OpCatalogueEntry[] | undefined;

/** What an internal op's catalogue doc adds: where users meet it, and that it is not part of the OPS.md op set. */
const INTERNAL_NOTE = 'Internal: appears in derivative graphs (transform output) and may be used in graphs, but is not part of the OPS.md op set.';

/**
 * GET /v1/ops: every op with its attrs as JSON Schema, sorted by name. Internal ops (those derivative rules emit) are
 * listed too, flagged `internal: true`, because every op of a graph /v1/transform returns must be in the catalogue.
 */
export function opCatalogue(): OpCatalogueEntry[] {
  if (catalogue === undefined) {
    catalogue = ALL_OPS
      .map((op) => ({
        name: op.name,
        inputs: op.inputs,
        attrs: z.toJSONSchema(op.attrs, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>,
        outputDatatype: op.outputDatatype,
        differentiable: op.differentiable,
        conventions: op.conventions ?? [],
        doc: op.internal ? `${op.doc} ${INTERNAL_NOTE}` : op.doc,
        internal: op.internal === true,
      }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }
  return catalogue;
}
