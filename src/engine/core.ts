/**
 * The engine entry points the derivative library composes (evaluate, shapes, grad, vjp, jvp, transform), gathered
 * from their own modules rather than from src/index.ts so that index.ts can import the library without a cycle.
 */
import { evaluate, shapes } from './evaluate.js';
import type { EngineCore } from './linear.js';
import { grad, jvp, vjp } from './run.js';
import { transform } from '../autodiff/transform.js';

export const engineCore: EngineCore = { evaluate, shapes, grad, vjp, jvp, transform };
