// system.log.mask as OPA applies it: the same event masked by our code (the mask evaluated by our
// wasm engine) and by a real OPA server's decision logger; `opa eval` of data.system.log.mask on
// the same event gives the rule list we must apply, no more and no less.
import { execFileSync, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseBundle } from '../../../src/policy/bundle.js';
import { PolicyEngine } from '../../../src/policy/engine.js';
import { decisionEvent, type DecisionEvent } from '../../../src/telemetry/decision-log/event.js';
import { MASK_ENTRYPOINT, MaskError, applyMask, parseMaskRules, pathEscape } from '../../../src/telemetry/decision-log/mask.js';
import { freePort } from '../../helpers/ports.js';
import { buildBundle, opaBinary } from '../../helpers/opa.js';
import { tempDir } from '../../helpers/tmp.js';

const MASK_REGO = `package system.log
import rego.v1

mask contains "/input/password"
mask contains "/input/missing/deeper"
mask contains "/input/list/1"
mask contains "/input/h/x%20y"
mask contains "/input/h/a:b"
mask contains "/result/secret"
mask contains {"op": "remove", "path": "/input/token"}
mask contains {"op": "upsert", "path": "/input/user/email", "value": "***"}
mask contains {"op": "upsert", "path": "/input/created/deep/key", "value": {"k": 1}}
mask contains {"op": "upsert", "path": "/input/password/inner", "value": "never"} if input.input.user.name == "nobody"
mask contains {"op": "upsert", "path": "/input/user/name", "value": "mallory"} if input.input.user.name == "alice"
mask contains {"op": "upsert", "path": "/input/scalar/under", "value": 1}
`;

const POLICY_REGO = `package envoy.authz
import rego.v1
allow := {"allowed": true, "secret": "s3", "headers": {"x-a": "1"}}
`;

const INPUT = {
  password: 'hunter2',
  token: 't',
  list: ['a', 'b', 'c'],
  h: { 'x y': 1, 'x%2520y': 2, 'a:b': 3, keep: 4 },
  user: { name: 'alice', email: 'alice@example.com' },
  scalar: 'str',
  other: { kept: true },
};
const RESULT = { allowed: true, secret: 's3', headers: { 'x-a': '1' } };

function event(): DecisionEvent {
  return decisionEvent({
    labels: { id: 'i', version: 'v' },
    decisionId: 'd-1',
    traceId: undefined,
    revision: 'r1',
    path: 'envoy/authz/allow',
    input: structuredClone(INPUT),
    result: structuredClone(RESULT),
    time: new Date(0),
    metrics: {},
  });
}

/** A real OPA server with console decision logs; the event it logs for one query. */
async function opaDecisionLog(dir: string): Promise<Record<string, unknown>> {
  const port = await freePort();
  const child = spawn(opaBinary(), ['run', '-s', '--addr', `127.0.0.1:${port}`, '--set', 'decision_logs.console=true', '--log-format', 'json', `${dir}/src-mask/policy.rego`, `${dir}/q.rego`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    const logged = new Promise<Record<string, unknown>>((resolve) => {
      const onLine = (line: string): void => {
        const rec = JSON.parse(line) as Record<string, unknown>;
        if (rec.msg === 'Decision Log') resolve(rec);
      };
      createInterface({ input: child.stdout }).on('line', onLine);
      createInterface({ input: child.stderr }).on('line', onLine);
    });
    for (let i = 0; ; i++) {
      const res = await fetch(`http://127.0.0.1:${port}/v1/data/envoy/authz/allow`, { method: 'POST', body: JSON.stringify({ input: INPUT }) }).catch(() => undefined);
      if (res?.ok) break;
      if (i > 100) throw new Error('opa did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
    return await logged;
  } finally {
    child.kill();
  }
}

describe('system.log.mask (OPA semantics)', () => {
  const tmp = tempDir();
  let engine: PolicyEngine;

  beforeAll(async () => {
    // The mask alone, compiled to wasm as `make policies` compiles it, evaluated by our engine.
    const bundle = buildBundle(tmp.dir, 'mask', { rego: MASK_REGO, entrypoint: MASK_ENTRYPOINT });
    tmp.write('q.rego', POLICY_REGO);
    engine = new PolicyEngine({ decisionPath: MASK_ENTRYPOINT, initialPages: 16, maxPages: 64 });
    await engine.activate(await parseBundle(readFileSync(bundle)));
  });

  it('applies exactly the rules opa eval gives, with the erasures and upserts a real OPA decision logger makes', async () => {
    const ev = event();
    // What real OPA says the rules are for this event...
    const evaluated = JSON.parse(
      execFileSync(opaBinary(), ['eval', '-f', 'json', '-d', `${tmp.dir}/src-mask/policy.rego`, '--stdin-input', 'data.system.log.mask'], { input: JSON.stringify(ev) }).toString(),
    ) as { result: { expressions: { value: unknown[] }[] }[] };
    const opaRules = evaluated.result[0]!.expressions[0]!.value;
    // ...and what our engine evaluates from the wasm bundle: the same list.
    const ours = engine.evaluateEntrypoint(MASK_ENTRYPOINT, ev) as unknown[];
    const sorted = (l: unknown[]): string[] => l.map((x) => JSON.stringify(x)).sort();
    expect(sorted(ours)).toEqual(sorted(opaRules));

    const rules = parseMaskRules(ours);
    applyMask(ev, rules);
    const logged = await opaDecisionLog(tmp.dir);
    expect(ev.input).toEqual(logged.input);
    expect(ev.result).toEqual(logged.result);
    // In OPA's order too: the rules of a set apply in the set's order.
    expect(ev.erased).toEqual(logged.erased);
    expect(ev.masked).toEqual(logged.masked);
    // Every listed pointer is one of the rules; rules that name nothing are not listed.
    const pointers = rules.map((r) => r.pointer);
    for (const p of [...(ev.erased ?? []), ...(ev.masked ?? [])]) expect(pointers).toContain(p);
    expect(ev.erased).not.toContain('/input/missing/deeper');
    // The caller's objects are untouched.
    expect(INPUT.password).toBe('hunter2');
  }, 30_000);

  it('refuses a bundle whose mask was left out of the wasm (it would be ignored)', async () => {
    const without = buildBundle(tmp.dir, 'nomask', { rego: POLICY_REGO, files: { 'mask.rego': MASK_REGO } });
    await expect(parseBundle(readFileSync(without))).rejects.toThrow(/no system\/log\/mask entrypoint/);
    const withMask = buildBundle(tmp.dir, 'withmask', { rego: POLICY_REGO, files: { 'mask.rego': MASK_REGO }, extraEntrypoints: [MASK_ENTRYPOINT] });
    expect((await parseBundle(readFileSync(withMask))).entrypoints).toEqual(['envoy/authz/allow', MASK_ENTRYPOINT]);
  });

  it('refuses a malformed rule list as a whole, as OPA does', () => {
    expect(() => parseMaskRules('/input/x')).toThrow(MaskError);
    expect(() => parseMaskRules(['input/x'])).toThrow(MaskError);
    expect(() => parseMaskRules(['/data/x'])).toThrow(MaskError);
    expect(() => parseMaskRules([{ path: '/input/x' }])).toThrow(MaskError);
    expect(() => parseMaskRules([{ op: 'replace', path: '/input/x' }])).toThrow(MaskError);
    expect(() => parseMaskRules(['/input/%zz'])).toThrow(MaskError);
    expect(() => parseMaskRules([5])).toThrow(MaskError);
    expect(parseMaskRules(undefined)).toEqual([]);
  });

  it('escapes segments as Go url.PathEscape does', () => {
    expect(pathEscape('x-api-key')).toBe('x-api-key');
    expect(pathEscape(':path')).toBe(':path');
    expect(pathEscape('a b/c?é')).toBe('a%20b%2Fc%3F%C3%A9');
  });
});
