// What the host built-ins promise beyond matching OPA case by case: a failing built-in is an
// undefined expression (never a failed evaluation), int64 results cross the boundary exactly,
// and the documented limits hold.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildBundle } from '../../../helpers/opa.js';
import { tempDir } from '../../../helpers/tmp.js';
import { parseBundle } from '../../../../src/policy/bundle.js';
import { PolicyEngine } from '../../../../src/policy/engine.js';
import { EvalScope, PROVIDED_BUILTINS, SDK_BUILTINS, hostBuiltins, unsupportedBuiltins } from '../../../../src/policy/builtins/index.js';
import { MAX_EXPAND } from '../../../../src/policy/builtins/net.js';

const tmp = tempDir();

async function engineFor(name: string, rego: string): Promise<PolicyEngine> {
  const engine = new PolicyEngine({ decisionPath: 't/r', initialPages: 16, maxPages: 1024 });
  await engine.activate(await parseBundle(readFileSync(buildBundle(tmp.dir, name, { rego, entrypoint: 't/r' }))));
  return engine;
}

describe('host built-ins', () => {
  it('turn a failure into an undefined expression, so the policy decides instead of the request failing', async () => {
    const engine = await engineFor(
      'errors',
      `package t
import rego.v1
default decoded := "undefined"
decoded := io.jwt.decode(input.token)[1].sub
r := {"decoded": decoded, "zone": [x | x := time.date([0, input.zone])]}
`,
    );
    expect(engine.evaluate({ token: 'garbage', zone: 'No/Where' }).result).toEqual({ decoded: 'undefined', zone: [] });
    expect(engine.evaluate({ token: 'e30.eyJzdWIiOiJhIn0.', zone: 'UTC' }).result).toEqual({ decoded: 'a', zone: [[1970, 1, 1]] });
  });

  it('hand int64 nanoseconds to the policy exactly (beyond 2^53)', async () => {
    const engine = await engineFor(
      'exact',
      `package t
import rego.v1
r := {
  "max": time.parse_rfc3339_ns("2262-04-11T23:47:16.854775807Z") == 9223372036854775807,
  "odd": time.parse_rfc3339_ns("2023-11-14T22:13:20.123456789Z") == 1700000000123456789,
  "duration": time.parse_duration_ns("2562047h47m16.854775807s") == 9223372036854775807,
}
`,
    );
    expect(engine.evaluate({}).result).toEqual({ max: true, odd: true, duration: true });
  });

  it('net.cidr_expand lists at most MAX_EXPAND addresses', () => {
    const expand = hostBuiltins(new EvalScope())['net.cidr_expand']!;
    const decode = (b: ArrayBuffer | undefined): unknown => (b === undefined ? undefined : JSON.parse(new TextDecoder().decode(b)));
    expect((decode(expand('10.0.0.0/16')) as string[]).length).toBe(MAX_EXPAND);
    expect(expand('10.0.0.0/15')).toBeUndefined();
  });

  it('read hostile arguments in linear time (PEM markers, quotes, durations)', () => {
    const host = hostBuiltins(new EvalScope());
    const token = `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.e30.`;
    const timed = (f: () => unknown): number => {
      const start = performance.now();
      f();
      return performance.now() - start;
    };
    const markers = '-----BEGIN X-----\n'.repeat(40_000);
    expect(timed(() => host['io.jwt.verify_rs256']!(token, markers))).toBeLessThan(1000);
    const endsFirst = `${'-----END X-----\n'.repeat(20_000)}${'-----BEGIN X-----\n'.repeat(20_000)}`;
    expect(timed(() => host['io.jwt.verify_rs256']!(token, endsFirst))).toBeLessThan(1000);
    const quoted = `${Buffer.from('{"alg":"none","cty":"JWT"}').toString('base64url')}.${Buffer.from(`${"'".repeat(300_000)}x`).toString('base64url')}.`;
    expect(timed(() => host['io.jwt.decode']!(quoted))).toBeLessThan(1000);
    expect(timed(() => host['time.parse_duration_ns']!(`${'1'.repeat(300_000)}x1d`))).toBeLessThan(1000);
  });

  it('never shadow the SDK built-ins, and name what nobody implements', () => {
    for (const name of SDK_BUILTINS) expect(Object.keys(hostBuiltins(new EvalScope()))).not.toContain(name);
    expect(PROVIDED_BUILTINS.has('sprintf')).toBe(true);
    expect(unsupportedBuiltins(['io.jwt.decode', 'time.now_ns', 'http.send', 'graphql.parse'])).toEqual(['http.send', 'graphql.parse']);
  });
});
