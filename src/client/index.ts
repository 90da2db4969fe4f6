/**
 * `gradserve/client`: call a gradserve service from Node or a browser with typed arrays in and out.
 *
 *   const gs = new GradserveClient('http://127.0.0.1:8080');
 *   const { gradients } = await gs.grad({ graph, inputs: { x: tensor(new Float32Array([1, 2]), [1, 2]) }, of: 'loss', wrt: ['x'] });
 */
export { BINARY_THRESHOLD_BYTES, GradserveClient, type CallOptions, type ClientOptions } from './client.js';
export { GradserveClientError, isGradserveClientError, type ClientErrorCode, type ProblemItem } from './errors.js';
export { tensor, toTensor, encodeTensor, decodeTensor, tensorFromBytes, dtypeOf, numel, bytesToBase64, base64ToBytes } from './codec.js';
export type * from './types.js';
