/** The shape of an op handler: one ONNX node in, one value per ONNX output out (undefined for an unused one). */
import type { ImportContext, OnnxNode, Val } from './context.js';

export type Handler = (cx: ImportContext, node: OnnxNode) => (Val | undefined)[];
