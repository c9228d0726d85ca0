// The engine reads the built-ins a compiled policy needs from the host and refuses a bundle that
// needs one nobody implements (naming it), keeping the last good bundle; `policy.js check` (run by
// `make policies`) fails the same way.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildBundle } from '../../../helpers/opa.js';
import { ROOT } from '../../../helpers/service.js';
import { tempDir } from '../../../helpers/tmp.js';
import { BundleError, parseBundle } from '../../../../src/policy/bundle.js';
import { PolicyEngine } from '../../../../src/policy/engine.js';

const tmp = tempDir();
const GOOD = `package envoy.authz
import rego.v1
allow := {"allowed": true, "headers": {"x-sub": io.jwt.decode(input.token)[1].sub}}
`;
const NEEDS_GRAPHQL = `package envoy.authz
import rego.v1
allow if graphql.schema_is_valid(input.schema)
`;

describe('required built-ins', () => {
  it('refuses a bundle that needs a built-in nobody implements, naming it, and keeps the last good one', async () => {
    const engine = new PolicyEngine({ decisionPath: 'envoy/authz/allow', initialPages: 16, maxPages: 1024 });
    await engine.activate(await parseBundle(readFileSync(buildBundle(tmp.dir, 'good', { rego: GOOD, revision: 'good' }))));
    const token = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"alice"}').toString('base64url')}.`;
    expect(engine.evaluate({ token }).result).toEqual({ allowed: true, headers: { 'x-sub': 'alice' } });

    const bad = await parseBundle(readFileSync(buildBundle(tmp.dir, 'bad', { rego: NEEDS_GRAPHQL, revision: 'bad' })));
    const err = await engine.activate(bad).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BundleError);
    expect((err as Error).message).toContain('graphql.schema_is_valid');
    expect(engine.revision).toBe('good');
    expect(engine.evaluate({ token }).result).toEqual({ allowed: true, headers: { 'x-sub': 'alice' } });
  });

  it('policy.js check (what `make policies` runs) fails on such a bundle and passes a good one', () => {
    const cli = join(ROOT, 'src', 'cli', 'policy.ts');
    const run = (bundle: string): { code: number; stderr: string } => {
      try {
        execFileSync('npx', ['--no-install', 'tsx', cli, 'check', '--bundle', bundle], { cwd: ROOT, stdio: 'pipe' });
        return { code: 0, stderr: '' };
      } catch (e) {
        const failure = e as { status: number; stderr: Buffer };
        return { code: failure.status, stderr: failure.stderr.toString() };
      }
    };
    expect(run(join(tmp.dir, 'good.tar.gz')).code).toBe(0);
    const bad = run(join(tmp.dir, 'bad.tar.gz'));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('built-ins this service does not implement: graphql.schema_is_valid');
  });
});
