// Evaluation from JSON text (the Check path) against opa-wasm's own evaluate() (an object input),
// on a real bundle built by the pinned OPA: the same result sets, also for an input larger than
// the wasm memory the policy started with, and across many calls (the heap is reused).
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseBundle } from '../../../src/policy/bundle.js';
import { PolicyEngine } from '../../../src/policy/engine.js';
import { buildBundle } from '../../helpers/opa.js';
import { tempDir } from '../../helpers/tmp.js';

const REGO = `package envoy.authz

import rego.v1

default allow := false

allow if input.user == data.admins[_]

echo := {"path": input.path, "n": count(input.items), "sum": sum(input.items), "user": input.user, "note": input.note}
`;

describe('evaluateJson', () => {
  let engine: PolicyEngine;
  const tmp = tempDir();
  beforeAll(async () => {
    const bundle = buildBundle(tmp.dir, 'eval', { rego: REGO, data: { admins: ['alice', 'ünï'] }, entrypoint: 'envoy/authz/allow', extraEntrypoints: ['envoy/authz/echo'] });
    engine = new PolicyEngine({ decisionPath: 'envoy/authz/echo', initialPages: 2, maxPages: 1024 });
    await engine.activate(await parseBundle(readFileSync(bundle)));
  });

  const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v), 'utf8');
  const inputs = [
    { user: 'alice', path: '/a', items: [1, 2, 3], note: 'é ✓ 𝄞' },
    { user: 'bob', path: '/b', items: [], note: '"quoted" \\ \n' },
    // Larger than the two pages the memory started with: it must grow.
    { user: 'ünï', path: '/big', items: Array.from({ length: 20_000 }, (_, i) => i), note: 'x'.repeat(200_000) },
  ];

  it('answers as evaluate() does on the same input', () => {
    for (const input of inputs) expect(engine.evaluateJson(json(input))).toEqual(engine.evaluate(input));
  });

  it('gives the same answers when called many times in a row (the heap is reset per call)', () => {
    for (let i = 0; i < 2000; i++) {
      const input = inputs[i % 2]!;
      expect(engine.evaluateJson(json(input)).result).toEqual({ path: input.path, n: input.items.length, sum: input.items.reduce((a, b) => a + b, 0), user: input.user, note: input.note });
    }
  });

  it('fails as a policy error, not a crash, on text that is not JSON', () => {
    expect(() => engine.evaluateJson(Buffer.from('{"user":'))).toThrow(/policy/);
  });
});
