/**
 * The ONNX backend node tests (Debian's libonnx-testdata) through the importer: every test whose op types are in
 * scope (all but test/onnx/out_of_scope.ts) runs forward against its expected outputs and, for floating-point
 * outputs, its gradient against finite differences (test/onnx/node_runner.ts). Skipped, saying so, when the test data
 * is not installed (`apt-get install libonnx-testdata python3-onnx`; .ci/run installs them).
 */
import { describe, expect, it } from 'vitest';
import { KNOWN_FAILURES } from './node_failures.js';
import { listNodeTests, nodeTestsAvailable, NODE_DATA, opTypesOf, runNodeTest, type NodeTestResult } from './node_runner.js';
import { OUT_OF_SCOPE } from './out_of_scope.js';

const available = nodeTestsAvailable();

if (!available) {
  describe('ONNX backend node tests', () => {
    it.skip(`skipped: no test data at ${NODE_DATA} (apt-get install libonnx-testdata python3-onnx)`, () => undefined);
  });
} else {
  const all = listNodeTests();
  const inScope = all.filter((t) => !opTypesOf(t).some((op) => Object.hasOwn(OUT_OF_SCOPE, op)));
  const expectedToFail = (t: string) => Object.hasOwn(KNOWN_FAILURES, t);
  const results = new Map<string, NodeTestResult>();

  describe('ONNX backend node tests', () => {
    it('lists only in-scope tests as known failures, and each one exists', () => {
      for (const t of Object.keys(KNOWN_FAILURES)) expect(inScope, t).toContain(t);
    });

    it.each(inScope)('%s', async (test) => {
      const r = await runNodeTest(test);
      results.set(test, r);
      const known = expectedToFail(test);
      if (known) expect(r.ok, `${test} passes now: take it off test/onnx/node_failures.ts`).toBe(false);
      else expect(r.ok ? 'ok' : `${r.stage}: ${r.message}`).toBe('ok');
    });

    it('passes at least 85% of the in-scope tests', () => {
      const passed = [...results.values()].filter((r) => r.ok).length;
      const gradients = [...results.values()].filter((r) => r.ok && r.gradient).length;
      console.log(`ONNX node tests: ${all.length} in the data, ${inScope.length} in scope, ${passed} pass (${(100 * passed / inScope.length).toFixed(1)}%), ${gradients} of them with a gradient check`);
      expect(results.size).toBe(inScope.length);
      expect(passed / inScope.length).toBeGreaterThanOrEqual(0.85);
    });
  });
}
