/**
 * Compile-time agreement between gradserve/client's types and the server's zod schemas (src/server/schemas.ts).
 * Never executed: client-types.test.ts type-checks this file with tsc, and any drift is a compile error here.
 */
import type { z } from 'zod';
import type * as C from '../../src/client/types.js';
import type * as S from '../../src/server/schemas.js';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Assert<T extends true> = T;
type In<T extends z.ZodType> = z.input<T>;
type Out<T extends z.ZodType> = z.output<T>;
/** The non-tensor fields: names and types must agree exactly in both directions. */
type Plain<T, Tensors extends string> = Omit<T, 'graph' | Tensors>;
type Same<A, B> = Equal<keyof A, keyof B> extends true ? ([A] extends [B] ? ([B] extends [A] ? true : false) : false) : false;

export type Requests = [
  Assert<Same<Plain<C.EvaluateRequest, 'inputs'>, Plain<In<typeof S.EvaluateBody>, 'inputs'>>>,
  // The server also accepts one name where a list is expected; the client always sends the list form.
  Assert<Equal<keyof C.GradRequest, keyof In<typeof S.GradBody>>>,
  Assert<C.GradRequest['of'] extends In<typeof S.GradBody>['of'] ? true : false>,
  Assert<C.GradRequest['wrt'] extends In<typeof S.GradBody>['wrt'] ? true : false>,
  Assert<Equal<C.GradRequest['per_example'], In<typeof S.GradBody>['per_example']>>,
  Assert<Equal<keyof C.VjpRequest, keyof In<typeof S.VjpBody>>>,
  Assert<Equal<C.VjpRequest['batched'], In<typeof S.VjpBody>['batched']>>,
  Assert<Equal<C.JvpRequest['batched'], In<typeof S.JvpBody>['batched']>>,
  Assert<Equal<C.HvpRequest['batched'], In<typeof S.HvpBody>['batched']>>,
  Assert<Equal<keyof C.JvpRequest, keyof In<typeof S.JvpBody>>>,
  Assert<Equal<keyof C.JacobianRequest, keyof In<typeof S.JacobianBody>>>,
  Assert<Equal<C.JacobianMode | undefined, In<typeof S.JacobianBody>['mode']>>,
  Assert<Equal<keyof C.HvpRequest, keyof In<typeof S.HvpBody>>>,
  Assert<Equal<keyof C.HessianRequest, keyof In<typeof S.HessianBody>>>,
  Assert<Same<Plain<C.GradcheckRequest, 'inputs' | 'of' | 'wrt'>, Plain<In<typeof S.GradcheckBody>, 'inputs' | 'of' | 'wrt'>>>,
  Assert<Equal<keyof C.ShapesRequest, keyof In<typeof S.ShapesBody>>>,
  Assert<Equal<C.TransformRequest['transform'], In<typeof S.TransformBody>['transform']>>,
  Assert<Equal<keyof Extract<C.TransformRequest, { transform: 'jvp' }>, keyof Extract<In<typeof S.TransformBody>, { transform: 'jvp' }>>>,
  Assert<Same<Omit<C.RenderRequest, 'graph'>, Omit<In<typeof S.RenderBody>, 'graph'>>>,
  // A graph as the service returns it can be sent back as it is.
  Assert<C.WireGraph extends In<typeof S.Graph> ? true : false>,
];

export type Responses = [
  Assert<Equal<keyof C.EvaluateResponse, keyof Out<typeof S.EvaluateResponse>>>,
  Assert<Equal<keyof C.GradResponse, keyof Out<typeof S.GradResponse>>>,
  Assert<Equal<keyof C.JvpResponse, keyof Out<typeof S.JvpResponse>>>,
  Assert<Equal<keyof C.JacobianResponse, keyof Out<typeof S.JacobianResponse>>>,
  Assert<Equal<C.JacobianResponse['mode'], Out<typeof S.JacobianResponse>['mode']>>,
  Assert<Equal<keyof C.HvpResponse, keyof Out<typeof S.HvpResponse>>>,
  Assert<Equal<keyof C.HessianResponse, keyof Out<typeof S.HessianResponse>>>,
  Assert<Equal<keyof C.GradcheckResponse, keyof Out<typeof S.GradcheckResponse>>>,
  Assert<Equal<keyof C.TransformResponse, keyof Out<typeof S.TransformResponse>>>,
  Assert<Equal<keyof C.ShapesResponse, keyof Out<typeof S.ShapesResponse>>>,
  Assert<Out<typeof S.OpsResponse>['ops'][number] extends C.OpInfo ? true : false>,
  Assert<Equal<keyof C.OpsResponse, keyof Out<typeof S.OpsResponse>>>,
];
