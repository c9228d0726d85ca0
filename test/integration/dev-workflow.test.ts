// The developer's commands: dev tokens with the claims a policy author needs, --help everywhere,
// admin tokens by name, the local stack's own config (make run) passing --check-config, and
// `make policies` rebuilding the bundle from the content of its sources.
import { execFileSync } from 'node:child_process';
import { cpSync, readFileSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { parseTtl } from '../../src/dev/issuer.js';
import { ROOT, runScript, runService } from '../helpers/service.js';
import { tempDir } from '../helpers/tmp.js';

describe('dev token', () => {
  const tmp = tempDir();

  it('carries the subject, roles, scope, audience and lifetime asked for', async () => {
    const dir = `${tmp.dir}/issuer`;
    const r = await runScript('src/dev/cli.ts', ['token', '--dir', dir, '--sub', 'alice', '--roles', 'auditor,buyer', '--scope', 'orders:read orders:audit', '--aud', 'ops-api', '--ttl', '10m']);
    expect(r.code).toBe(0);
    const claims = decodeJwt(r.stdout.trim());
    expect(claims).toMatchObject({ sub: 'alice', roles: ['auditor', 'buyer'], scope: 'orders:read orders:audit', aud: 'ops-api' });
    expect(claims.exp! - claims.iat!).toBe(600);
  });

  it('keeps the defaults for options given empty (make token without ROLES=...)', async () => {
    const r = await runScript('src/dev/cli.ts', ['token', '--dir', `${tmp.dir}/issuer`, '--sub', '', '--roles', '', '--scope', '', '--aud', '', '--ttl', '']);
    expect(r.code).toBe(0);
    const claims = decodeJwt(r.stdout.trim());
    expect(claims).toMatchObject({ sub: 'dev-user', roles: ['buyer'], scope: 'orders:read', aud: 'demo-api' });
    expect(claims.exp! - claims.iat!).toBe(3600);
  });

  it('reads lifetimes in seconds, minutes, hours and days, and refuses others', () => {
    expect([parseTtl('600'), parseTtl('90s'), parseTtl('10m'), parseTtl('2h'), parseTtl('1d')]).toEqual([600, 90, 600, 7200, 86400]);
    for (const bad of ['0', '-5', '10x', '1.5h', '31d', '']) expect(() => parseTtl(bad)).toThrow(/--ttl/);
  });
});

describe('CLIs', () => {
  it.each([['src/dev/cli.ts'], ['src/cli/keys.ts'], ['src/cli/policy.ts'], ['src/main.ts']])('%s --help prints its usage and exits 0', async (script) => {
    const r = await runScript(script, ['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^usage: /);
  });

  it('keys admin-token uses --name for the entry, and requires it', async () => {
    const r = await runScript('src/cli/keys.ts', ['admin-token', '--name', 'ops']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^- name: ops\n {2}sha256: [0-9a-f]{64}$/m);
    expect((await runScript('src/cli/keys.ts', ['admin-token'])).code).toBe(1);
  });
});

describe("the local stack's config (make run)", () => {
  it('passes --check-config once the local secrets exist', async () => {
    expect((await runScript('src/dev/cli.ts', ['init'])).code).toBe(0);
    const r = await runService(['--config', 'envoy/local/authz.yaml', '--check-config']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
});

describe('make policies', () => {
  const tmp = tempDir();

  it('rebuilds the bundle when its sources\' content changed or it is unreadable, whatever the mtimes say, and only then', () => {
    // A copy of the repository's Makefile and policy sources, with the shared tools (OPA) and build.
    const dir = join(tmp.dir, 'repo');
    cpSync(join(ROOT, 'Makefile'), join(dir, 'Makefile'));
    cpSync(join(ROOT, 'policies'), join(dir, 'policies'), { recursive: true, filter: (src) => !src.includes(`${join('policies', 'build')}`) });
    // The bundle is built by `policy.js build` (dist/): the build's inputs are shared, not copied.
    for (const f of ['.tools', 'node_modules', 'package.json', 'package-lock.json', 'proto', 'src', 'tsconfig.json', 'tsconfig.build.json', 'dist']) symlinkSync(join(ROOT, f), join(dir, f));
    const bundle = join(dir, 'policies', 'build', 'bundle.tar.gz');
    const make = (): string => execFileSync('make', ['-s', 'policies'], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const members = (): string[] => execFileSync('tar', ['-tzf', bundle], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n');
    const revision = (): string => (JSON.parse(execFileSync('tar', ['-xzOf', bundle, '/.manifest'], { encoding: 'utf8' })) as { revision: string }).revision;
    const future = new Date(Date.now() + 3600_000);

    make();
    expect(members()).toContain('/policy.wasm');
    const first = { mtime: statSync(bundle).mtimeMs, revision: revision() };

    // Unchanged sources: nothing is rebuilt.
    make();
    expect(statSync(bundle).mtimeMs).toBe(first.mtime);

    // A broken bundle newer than its sources (make's mtime rule kept it): rebuilt.
    writeFileSync(bundle, 'not a bundle');
    utimesSync(bundle, future, future);
    make();
    expect(members()).toContain('/policy.wasm');
    expect(revision()).toBe(first.revision);

    // A source changed but older than the bundle: rebuilt, with the new revision.
    const rego = join(dir, 'policies', 'envoy', 'authz', 'authz.rego');
    writeFileSync(rego, `${readFileSync(rego, 'utf8')}\n# changed\n`);
    const past = new Date(Date.now() - 3600_000);
    utimesSync(rego, past, past);
    make();
    expect(revision()).not.toBe(first.revision);
  }, 120_000);
});
