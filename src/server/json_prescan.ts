/**
 * A byte-level pass over a large JSON body before JSON.parse builds it, refusing what cannot be represented or would
 * take memory out of proportion to the body:
 *
 * - an array longer than V8 can hold aborts the whole process ("invalid size error", from a worker too), so no array
 *   may have more than MAX_JSON_ARRAY elements, nor, inside a tensor field, more than the per-tensor element limit;
 *   nor may one tensor (`inputs.x`, `graph.constants.c`, ...), nested rows and all, have more values than that (its
 *   data is flattened into one array);
 * - objects with more than MAX_JSON_KEYS keys (V8's dictionaries have a size limit of their own);
 * - more values outside tensor fields than a graph of GRADSERVE_MAX_NODES nodes could need (they would all be
 *   rebuilt as JS values on the event loop);
 * - structure without data: more than STRUCTURE_ALLOWANCE arrays and objects beyond the number of scalar values
 *   (100 MB of `[],[],...` held the event loop for 26 s and took 6 GB);
 * - a body whose parsed form would need more than `heapBudget` bytes of JS heap (an estimate that errs high).
 *
 * The pass only counts; it does not validate. Anything it lets through is parsed by JSON.parse, which reports the
 * body's syntax errors as it always did. Failures are 413 TOO_LARGE naming the array or object when there is one.
 */
import { GradserveError } from '../errors.js';

/** Elements in one JSON array: half of V8's limit (2^27 - 3), so no array JSON.parse builds comes near it. */
export const MAX_JSON_ARRAY = 2 ** 26;
/** Values a tensor in JSON may have beyond its element limit: those of its shape and other fields. */
const TENSOR_SLACK = 1024;
/** Values outside tensor fields, at least (a graph has a few dozen per node at most: see otherValuesLimit). */
export const MAX_OTHER_VALUES = 2 ** 22;

/** The limit on values outside tensor fields for a node limit (GRADSERVE_MAX_NODES). */
export function otherValuesLimit(maxNodes: number): number {
  return Math.max(MAX_OTHER_VALUES, 64 * maxNodes);
}
/** Keys in one JSON object. */
export const MAX_JSON_KEYS = 2 ** 22;
/** Nesting the scan follows; deeper is refused as too deep (PrescanLimits.tooDeep). */
const MAX_SCAN_DEPTH = 2 ** 20;
/** Arrays and objects a body may have beyond its number of scalar values. */
export const STRUCTURE_ALLOWANCE = 2 ** 20;

export interface PrescanLimits {
  /** Per-tensor element limit (GRADSERVE_MAX_TENSOR_ELEMENTS): no array inside a tensor field may be longer. */
  maxTensorElements: number;
  /** JS heap the parsed body may take (bytes); Infinity for no limit. */
  heapBudget: number;
  /** Values outside tensor fields (otherValuesLimit); MAX_OTHER_VALUES when absent. */
  maxOtherValues?: number | undefined;
  /** The error for nesting past what the scan follows, given the path of the value 128 levels deep (body.ts). */
  tooDeep?: ((path: (string | number)[]) => Error) | undefined;
}

/** Levels of the path given to PrescanLimits.tooDeep (body.ts's MAX_JSON_DEPTH). */
const TOO_DEEP_PATH = 128;

/** `["graph", "nodes", 2]` -> `graph.nodes[2]`, as body.ts's formatPath writes paths. */
function formatPath(path: readonly (string | number)[]): string {
  let out = '';
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out === '' ? seg : `.${seg}`;
  return out;
}

export interface PrescanStats {
  containers: number;
  scalars: number;
  /** Estimated JS heap bytes of the parsed body, its text included. */
  heapBytes: number;
}

const ARRAY = 0;
const OBJECT = 1;

// Bytes of a scalar token: 0, or FRACTION for those that make a number fractional; DELIMITER ends the token.
const FRACTION = 1;
const DELIMITER = 2;
const CLASS = new Uint8Array(256);
for (const c of ' \t\r\n,:]}[{"') CLASS[c.charCodeAt(0)] = DELIMITER;
for (const c of '.eE') CLASS[c.charCodeAt(0)] = FRACTION;

const TENSOR_FIELDS = ['inputs', 'cotangents', 'tangents', 'vectors'];

function tooLarge(where: string, message: string): GradserveError {
  return new GradserveError('TOO_LARGE', where === '' ? message : `${where}: ${message}`, { errors: [{ path: where || '(body)', message }] });
}

function fmtBytes(n: number): string {
  return n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(1)} GiB` : `${Math.ceil(n / 2 ** 20)} MiB`;
}

/** Throws TOO_LARGE when the body is beyond the limits above; otherwise returns what it counted. */
export function prescanJson(buf: Uint8Array, limits: PrescanLimits): PrescanStats {
  const n = buf.length;
  let cap = 64;
  let kind = new Uint8Array(cap);
  let count = new Int32Array(cap); // elements of an array, keys of an object
  let keyStart = new Int32Array(cap); // the current key of an object, as a byte range
  let keyEnd = new Int32Array(cap);
  let tensor = new Uint8Array(cap); // inside a tensor field
  let limitOf = new Float64Array(cap); // elements an array may have
  let depth = 0;
  let expectKey = false;
  let containers = 0;
  let scalars = 0;
  // JSON.parse's input string, then the parsed values; per value an upper bound of V8's sizes on 64-bit.
  let heap = 2 * n;

  const keyText = (d: number): string => {
    const s = keyStart[d]!;
    const e = keyEnd[d]!;
    const raw = Buffer.from(buf.buffer, buf.byteOffset + s, e - s);
    if (raw.indexOf(0x5c) < 0) return raw.toString('utf8');
    try {
      return JSON.parse(`"${raw.toString('utf8')}"`) as string;
    } catch {
      return raw.toString('utf8');
    }
  };
  /** The path of the container at level `top`, as segments. */
  const segmentsTo = (top: number): (string | number)[] => {
    const out: (string | number)[] = [];
    for (let d = 1; d <= top; d++) out.push(kind[d - 1] === OBJECT ? keyText(d - 1) : count[d - 1]! - 1);
    return out;
  };
  const pathTo = (top: number): string => formatPath(segmentsTo(top));
  const grow = (): void => {
    cap *= 2;
    const k = new Uint8Array(cap); k.set(kind); kind = k;
    const c = new Int32Array(cap); c.set(count); count = c;
    const s = new Int32Array(cap); s.set(keyStart); keyStart = s;
    const e = new Int32Array(cap); e.set(keyEnd); keyEnd = e;
    const t = new Uint8Array(cap); t.set(tensor); tensor = t;
    const l = new Float64Array(cap); l.set(limitOf); limitOf = l;
  };
  // The tensor being scanned, if any: its level and the values in it so far (its shape's too, hence the slack).
  let rootLevel = -1;
  let rootValues = 0;
  const tensorLimit = Math.min(limits.maxTensorElements, MAX_JSON_ARRAY);
  const tensorValues = tensorLimit + TENSOR_SLACK;
  const overTensor = (): GradserveError => {
    const why = limits.maxTensorElements <= MAX_JSON_ARRAY
      ? `a tensor of more than ${tensorLimit} values is over the limit of ${tensorLimit} per tensor (GRADSERVE_MAX_TENSOR_ELEMENTS)`
      : `a tensor of more than ${tensorLimit} values is more than a JSON body may hold; send large tensors as b64 or binary`;
    return tooLarge(pathTo(rootLevel), why);
  };
  // Values outside tensor fields (the graph's nodes and attributes, names, options).
  let otherValues = 0;
  const maxOther = limits.maxOtherValues ?? MAX_OTHER_VALUES;
  const overOther = (): GradserveError =>
    tooLarge(pathTo(depth === 0 ? 0 : depth - 1), `the request has more than ${maxOther} values outside its tensors (inputs, cotangents, tangents, vectors, graph.constants)`);
  /** The error for an array at level `top` over its limit. */
  const overLimit = (top: number): GradserveError => {
    const limit = limitOf[top]!;
    const why = tensor[top] === 1 && limits.maxTensorElements <= MAX_JSON_ARRAY
      ? `an array of more than ${limit} elements is over the limit of ${limit} per tensor (GRADSERVE_MAX_TENSOR_ELEMENTS)`
      : `an array of more than ${limit} elements is more than a JSON body may hold; send large tensors as b64 or binary`;
    return tooLarge(pathTo(top), why);
  };
  /** A value starts at the current level: count it against its array's limit (inlined in the scalar paths). */
  const valueStart = (): void => {
    if (depth === 0) return;
    const top = depth - 1;
    if (kind[top] !== ARRAY) {
      heap += 16; // the property slot
      return;
    }
    heap += 8; // the element slot
    if (++count[top]! > limitOf[top]!) throw overLimit(top);
  };
  const open = (k: number): void => {
    valueStart();
    // Far past the depth any request may have (body.ts refuses 128): the error it would give, without the parse.
    if (depth === MAX_SCAN_DEPTH) throw limits.tooDeep?.(segmentsTo(TOO_DEEP_PATH)) ?? tooLarge(pathTo(TOO_DEEP_PATH), `nesting deeper than ${MAX_SCAN_DEPTH} levels`);
    if (depth === cap) grow();
    // A tensor field: a top-level key of TENSOR_FIELDS, or graph.constants; and everything inside one.
    let t = 0;
    if (depth > 0) {
      const top = depth - 1;
      if (tensor[top] === 1) t = 1;
      else if (depth === 1 && kind[0] === OBJECT && TENSOR_FIELDS.includes(keyText(0))) t = 1;
      else if (depth === 2 && kind[0] === OBJECT && kind[1] === OBJECT && keyText(1) === 'constants' && keyText(0) === 'graph') t = 1;
    }
    // A tensor (inputs.x, graph.constants.c, inputs[0] of the OIP): its values are counted as a whole too.
    if (depth >= 2 && tensor[depth - 1] === 1 && tensor[depth - 2] === 0) {
      rootLevel = depth;
      rootValues = 0;
    }
    kind[depth] = k;
    count[depth] = 0;
    tensor[depth] = t;
    limitOf[depth] = t === 1 ? Math.min(limits.maxTensorElements, MAX_JSON_ARRAY) : MAX_JSON_ARRAY;
    depth++;
    containers++;
    heap += k === ARRAY ? 48 : 64;
  };

  let i = 0;
  while (i < n) {
    const c = buf[i]!;
    switch (c) {
      case 0x20: case 0x09: case 0x0a: case 0x0d: case 0x3a: // whitespace, ':'
        i++;
        break;
      case 0x5b: // [
        open(ARRAY);
        expectKey = false;
        i++;
        break;
      case 0x7b: // {
        open(OBJECT);
        expectKey = true;
        i++;
        break;
      case 0x5d: case 0x7d: // ] }
        if (depth > 0) depth--;
        if (depth === rootLevel) rootLevel = -1;
        expectKey = false;
        i++;
        break;
      case 0x2c: // ,
        expectKey = depth > 0 && kind[depth - 1] === OBJECT;
        i++;
        break;
      case 0x22: { // a string: its end is the next quote not escaped by an odd run of backslashes
        let e = buf.indexOf(0x22, i + 1);
        while (e > 0) {
          let bs = 0;
          for (let k = e - 1; buf[k] === 0x5c; k--) bs++;
          if (bs % 2 === 0) break;
          e = buf.indexOf(0x22, e + 1);
        }
        if (e < 0) e = n; // unterminated: JSON.parse will say so
        if (expectKey && depth > 0) {
          const top = depth - 1;
          if (++count[top]! > MAX_JSON_KEYS) throw tooLarge(pathTo(depth - 1), `an object with more than ${MAX_JSON_KEYS} keys is more than a JSON body may hold`);
          keyStart[top] = i + 1;
          keyEnd[top] = e;
          heap += 32 + (e - i);
          expectKey = false;
        } else {
          valueStart();
          scalars++;
          if (rootLevel >= 0 && ++rootValues > tensorValues) throw overTensor();
          if ((depth === 0 || tensor[depth - 1] === 0) && ++otherValues > maxOther) throw overOther();
          heap += 32 + 2 * (e - i);
        }
        i = e + 1;
        break;
      }
      default: { // a number, true, false, null (or garbage, for JSON.parse to report)
        if (depth > 0 && kind[depth - 1] === ARRAY) {
          heap += 8;
          if (++count[depth - 1]! > limitOf[depth - 1]!) throw overLimit(depth - 1);
        } else {
          valueStart();
        }
        scalars++;
        if (rootLevel >= 0 && ++rootValues > tensorValues) throw overTensor();
        if ((depth === 0 || tensor[depth - 1] === 0) && ++otherValues > maxOther) throw overOther();
        const s = i;
        let frac = 0;
        let cls: number;
        while (i < n && (cls = CLASS[buf[i]!]!) !== DELIMITER) {
          frac |= cls;
          i++;
        }
        if (i === s) i++;
        // A number that is not a small integer may be a heap number until its array is packed.
        if (frac !== 0 || i - s > 9) heap += 16;
        break;
      }
    }
  }

  if (containers > scalars + STRUCTURE_ALLOWANCE) {
    throw tooLarge('', `the body has ${containers} arrays and objects for ${scalars} values: at most ${STRUCTURE_ALLOWANCE} more arrays and objects than values are accepted`);
  }
  if (heap > limits.heapBudget) {
    throw tooLarge('', `parsing this body would take about ${fmtBytes(heap)} of memory, over the ${fmtBytes(limits.heapBudget)} a parse may use; send large tensors as b64 or binary`);
  }
  return { containers, scalars, heapBytes: heap };
}
