// Changing settings without a restart (docs/operations.md "Reloading the configuration"): a real
// process picks up a changed file or SIGHUP, applies it, keeps the last good config on errors and
// names what needs a restart; in-flight calls finish on their generation; nothing leaks.
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { freePort } from '../helpers/ports.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authzClient, rlsClient } from '../helpers/grpc.js';
import { loopbackServer, sendJson } from '../helpers/http.js';
import { AUDIENCE, jwks, makeKey, signToken, type TestKey } from '../helpers/keys.js';
import { buildBundle } from '../helpers/opa.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { checkRequest } from '../helpers/requests.js';
import { configYaml, spawnService, startInProcess, type ServiceProcess } from '../helpers/service.js';
import { tempDir } from '../helpers/tmp.js';

const sha = (t: string): string => createHash('sha256').update(t).digest('hex');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const ISSUER_A = 'https://a.test.invalid';
const ISSUER_B = 'https://b.test.invalid';

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Records of the reloads a process has logged (successes and failures). */
const reloads = (svc: ServiceProcess): Record<string, unknown>[] => svc.lines.filter((l) => l.event === 'config_reloaded' || l.event === 'config_reload_failed');

async function readyz(admin: string): Promise<{ status: number; body: { ready: boolean; config: Record<string, unknown> } }> {
  const r = await fetch(`http://${admin}/readyz`);
  return { status: r.status, body: (await r.json()) as { ready: boolean; config: Record<string, unknown> } };
}

const adminGet = (admin: string, token: string): Promise<number> => fetch(`http://${admin}/v1/revocations`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);

describe('config reload (a real process)', () => {
  const tmp = tempDir();
  let keyA: TestKey;
  let keyB: TestKey;

  beforeAll(async () => {
    [keyA, keyB] = await Promise.all([makeKey('ES256'), makeKey('ES256')]);
    tmp.write('a.json', jwks(keyA));
    tmp.write('b.json', jwks(keyB));
    buildBundle(tmp.dir, 'deny', { rego: 'package envoy.authz\n\ndefault allow := false\n', revision: 'deny' });
    tmp.write('user.yaml', 'domain: d\ndescriptors:\n  - key: user\n    rate_limit: { unit: day, requests_per_unit: 1 }\n');
    tmp.write('client.yaml', 'domain: d\ndescriptors:\n  - key: client\n    rate_limit: { unit: day, requests_per_unit: 1 }\n');
  });

  const issuer = (iss: string, file: string): Record<string, unknown> => ({ issuer: iss, audiences: [AUDIENCE], algorithms: ['ES256'], jwks: { file } });
  function config(name: string, o: { dryRun?: boolean; publicRoute?: boolean; issuers?: string[]; admin?: string; tokensFile?: string; rlFile?: string; server?: Record<string, unknown>; reload?: Record<string, unknown>; extra?: Record<string, unknown> } = {}): string {
    return tmp.write(
      name,
      configYaml({
        server: { address: '127.0.0.1:0', ...o.server },
        admin: { address: '127.0.0.1:0', tokens: [{ name: 'ops', sha256: sha(o.admin ?? 'token-a') }], ...(o.tokensFile ? { tokens_file: o.tokensFile } : {}) },
        authentication: { jwt: { issuers: (o.issuers ?? ['a']).map((i) => (i === 'a' ? issuer(ISSUER_A, 'a.json') : issuer(ISSUER_B, 'b.json'))) } },
        routes: o.publicRoute === false ? [] : [{ name: 'public', match: { path_prefix: '/public' }, public: true }],
        policy: { bundle: { file: 'deny.tar.gz' }, dry_run: o.dryRun ?? false },
        ratelimit: { files: [o.rlFile ?? 'user.yaml'], algorithm: 'fixed_window' },
        reload: { debounce_ms: 50, ...o.reload },
        ...o.extra,
      }),
    );
  }

  it('applies dry_run, routes, an issuer, admin tokens and the rate-limit file path without a restart', async () => {
    const svc = await spawnService(['--config', config('live.yaml')]);
    const started = svc.lines.find((l) => l.event === 'started')!;
    const admin = started.admin as string;
    const client = authzClient(svc.address);
    const rls = rlsClient(svc.address);
    const publicCall = async (): Promise<number | undefined> => (await client.check(checkRequest({ path: '/public/x' }))).status?.code;
    const tokenB = await signToken(keyB, { iss: ISSUER_B });
    const withB = async (): Promise<number | undefined> => (await client.check(checkRequest({ headers: { authorization: `Bearer ${tokenB}` } }))).status?.code;
    let n = 0;
    const change = async (o: Parameters<typeof config>[1]): Promise<void> => {
      config('live.yaml', o);
      n += 1;
      await until(`reload ${n}`, () => reloads(svc).length >= n);
      expect(reloads(svc).at(-1)).toMatchObject({ event: 'config_reloaded', generation: n + 1 });
    };
    try {
      // Generation 1: the policy denies the public route; issuer B is unknown; token-a administers; one call a minute per user.
      expect(await publicCall()).toBe(7);
      expect(await withB()).toBe(16);
      expect(await adminGet(admin, 'token-a')).toBe(200);
      expect((await rls.shouldRateLimit('d', [[['user', 'alice']]])).overall_code).toBe('OK');
      expect((await rls.shouldRateLimit('d', [[['user', 'alice']]])).overall_code).toBe('OVER_LIMIT');

      await change({ dryRun: true });
      expect(await publicCall()).toBe(0);

      await change({ dryRun: true, publicRoute: false });
      expect(await publicCall()).toBe(16);

      await change({ dryRun: true, publicRoute: false, issuers: ['a', 'b'] });
      expect(await withB()).toBe(0);

      await change({ dryRun: true, publicRoute: false, issuers: ['a', 'b'], admin: 'token-b' });
      expect(await adminGet(admin, 'token-a')).toBe(401);
      expect(await adminGet(admin, 'token-b')).toBe(200);

      await change({ dryRun: true, publicRoute: false, issuers: ['a', 'b'], admin: 'token-b', rlFile: 'client.yaml' });
      expect((await rls.shouldRateLimit('d', [[['user', 'alice']]])).overall_code).toBe('OK');
      expect((await rls.shouldRateLimit('d', [[['client', 'x']]])).overall_code).toBe('OK');
      expect((await rls.shouldRateLimit('d', [[['client', 'x']]])).overall_code).toBe('OVER_LIMIT');

      const r = await readyz(admin);
      expect(r.status).toBe(200);
      expect(r.body.config).toMatchObject({ generation: 6, reloads: { success: 5, failure: 0 } });
      // The same process all along.
      expect(svc.lines.filter((l) => l.event === 'started')).toHaveLength(1);
    } finally {
      client.close();
      rls.close();
      expect(await svc.stop()).toBe(0);
    }
  });

  it('keeps the last good config on a broken file: logged with file, key and problem, counted, shown in /readyz, still ready', async () => {
    const file = config('broken.yaml');
    const svc = await spawnService(['--config', file]);
    const admin = svc.lines.find((l) => l.event === 'started')!.admin as string;
    try {
      tmp.write('broken.yaml', `${configYaml({ admin: { address: '127.0.0.1:0' } })}policy: { bundle: { file: deny.tar.gz }, dry_runn: true }\n`);
      await until('the failed reload', () => reloads(svc).length >= 1);
      const failed = reloads(svc)[0]!;
      expect(failed).toMatchObject({ event: 'config_reload_failed', file, generation: 1, problems: [{ key_path: '/policy/dry_runn', problem: 'unknown key' }] });
      expect(failed.level).toBe('error');
      // Last good: the admin token of generation 1 still works.
      expect(await adminGet(admin, 'token-a')).toBe(200);
      const r = await readyz(admin);
      expect(r.status).toBe(200);
      expect(r.body.ready).toBe(true);
      expect(r.body.config).toMatchObject({ generation: 1, reloads: { success: 0, failure: 1 }, last_error: { file, problems: [{ key_path: '/policy/dry_runn', problem: 'unknown key' }] } });
      const metrics = await (await fetch(`http://${admin}/metrics`)).text();
      expect(metrics).toMatch(/^envoy_authz_config_reload_total\{result="failure"\} 1$/m);
      expect(metrics).toMatch(/^envoy_authz_config_generation 1$/m);
      expect(metrics).toMatch(/^envoy_authz_config_last_reload_success_timestamp_seconds \d{10}$/m);

      // A referenced file that does not load is the same: the last good config stays.
      tmp.write('b.json', '{"keys": [');
      config('broken.yaml', { issuers: ['a', 'b'] });
      await until('the second failed reload', () => reloads(svc).length >= 2);
      expect(reloads(svc)[1]).toMatchObject({ event: 'config_reload_failed', problems: [{ key_path: '/authentication/jwt/issuers/1/jwks/file' }] });

      // Fixed: applied, and the error is gone from /readyz.
      tmp.write('b.json', jwks(keyB));
      config('broken.yaml', { issuers: ['a', 'b'], admin: 'token-b' });
      await until('the good reload', () => reloads(svc).some((l) => l.event === 'config_reloaded'));
      expect(await adminGet(admin, 'token-b')).toBe(200);
      const after = await readyz(admin);
      expect(after.body.config).toMatchObject({ generation: 2, reloads: { success: 1, failure: 2 } });
      expect(after.body.config.last_error).toBeUndefined();
      expect(await (await fetch(`http://${admin}/metrics`)).text()).toMatch(/^envoy_authz_config_reload_total\{result="success"\} 1$/m);
    } finally {
      expect(await svc.stop()).toBe(0);
    }
  });

  it('names a changed listen address as needing a restart, keeps listening where it did, and applies the rest', async () => {
    const svc = await spawnService(['--config', config('listen.yaml')]);
    const admin = svc.lines.find((l) => l.event === 'started')!.admin as string;
    const client = authzClient(svc.address);
    try {
      expect((await client.check(checkRequest({ path: '/public/x' }))).status?.code).toBe(7);
      config('listen.yaml', { dryRun: true, server: { address: '127.0.0.1:1', max_concurrent_streams: 10 } });
      await until('the reload', () => reloads(svc).length >= 1);
      expect(reloads(svc)[0]).toMatchObject({ event: 'config_reloaded', generation: 2 });
      // Logged right after config_reloaded: it may reach our pipe in a later read.
      await until('the restart warning', () => svc.lines.some((l) => l.event === 'config_restart_required'));
      const warning = svc.lines.find((l) => l.event === 'config_restart_required')!;
      expect(warning).toMatchObject({ level: 'warn', keys: ['/server/address', '/server/max_concurrent_streams'] });
      expect((await readyz(admin)).body.config.restart_required).toEqual(['/server/address', '/server/max_concurrent_streams']);
      // Same listener, new dry_run.
      expect((await client.check(checkRequest({ path: '/public/x' }))).status?.code).toBe(0);
    } finally {
      client.close();
      expect(await svc.stop()).toBe(0);
    }
  });

  it('reloads on SIGHUP (here with watching and polling off), re-reading the files the config refers to', async () => {
    tmp.write('tokens.yaml', `- name: ops2\n  sha256: ${sha('token-c')}\n`);
    const quiet = { reload: { watch: false, poll_interval_ms: 0 } };
    const svc = await spawnService(['--config', config('hup.yaml', quiet)]);
    const admin = svc.lines.find((l) => l.event === 'started')!.admin as string;
    try {
      config('hup.yaml', { ...quiet, tokensFile: 'tokens.yaml' });
      await sleep(600);
      expect(reloads(svc)).toHaveLength(0);
      expect(await adminGet(admin, 'token-c')).toBe(401);
      svc.child.kill('SIGHUP');
      await until('the SIGHUP reload', () => reloads(svc).length >= 1);
      expect(reloads(svc)[0]).toMatchObject({ event: 'config_reloaded', trigger: 'signal', generation: 2 });
      expect(await adminGet(admin, 'token-c')).toBe(200);
      // The referenced file alone changed: SIGHUP re-reads it.
      tmp.write('tokens.yaml', `- name: ops2\n  sha256: ${sha('token-d')}\n`);
      svc.child.kill('SIGHUP');
      await until('the second SIGHUP reload', () => reloads(svc).length >= 2);
      expect(await adminGet(admin, 'token-c')).toBe(401);
      expect(await adminGet(admin, 'token-d')).toBe(200);
    } finally {
      expect(await svc.stop()).toBe(0);
    }
  });
});

describe('config reload (in process)', () => {
  const tmp = tempDir();

  it('lets a call in flight finish on the generation it started on; new calls get the new one', async () => {
    const key = await makeKey('ES256');
    // A JWKS endpoint that answers slowly keeps one Check in flight across the reload.
    const slow = await loopbackServer((_req, res) => setTimeout(() => sendJson(res, jwks(key)), 800));
    const cfg = (issuers: unknown[]): string =>
      tmp.write(
        'inflight.yaml',
        configYaml({
          server: { address: '127.0.0.1:0' },
          check: { deadline_ms: 5000 },
          authentication: { jwt: { issuers } },
          reload: { watch: false, poll_interval_ms: 0 },
        }),
      );
    const svc = await startInProcess(cfg([{ issuer: ISSUER_A, audiences: [AUDIENCE], algorithms: ['ES256'], jwks: { url: `${slow.url}/jwks`, allow_insecure_http: true } }]));
    const client = authzClient(svc.address);
    try {
      const token = await signToken(key, { iss: ISSUER_A });
      const inflight = client.check(checkRequest({ headers: { authorization: `Bearer ${token}` } }));
      await until('the JWKS fetch', () => slow.hits() >= 1);
      // The new config trusts no issuer: the token is unknown to it.
      cfg([]);
      expect(await svc.reload()).toMatchObject({ ok: true, generation: 2 });
      expect((await inflight).status?.code).toBe(0);
      expect((await client.check(checkRequest({ headers: { authorization: `Bearer ${token}` } }))).status?.code).toBe(16);
    } finally {
      client.close();
      await svc.shutdown();
    }
  });

  it('falls back to polling where watching is off (reload.watch: false)', async () => {
    const cfg = (dryRun: boolean): string =>
      tmp.write(
        'poll.yaml',
        configYaml({
          server: { address: '127.0.0.1:0' },
          routes: dryRun ? [{ name: 'open', match: { path_prefix: '/' }, public: true }] : [],
          reload: { watch: false, poll_interval_ms: 200 },
        }),
      );
    const svc = await startInProcess(cfg(false));
    const client = authzClient(svc.address);
    try {
      expect((await client.check(checkRequest())).status?.code).toBe(16);
      cfg(true);
      await until('the polled reload', () => svc.config().generation === 2);
      expect(svc.logs.lines().find((l) => l.event === 'config_reloaded')).toMatchObject({ trigger: 'poll' });
      expect((await client.check(checkRequest())).status?.code).toBe(0);
    } finally {
      client.close();
      await svc.shutdown();
    }
  });

  describe('with Redis', () => {
    let redis: TestRedis;
    beforeAll(async () => {
      redis = await startRedis();
    });
    afterAll(async () => {
      await redis.stop();
    });

    it('leaks no file descriptor, socket or interval timer over many reloads that rebuild everything', async () => {
      buildBundle(tmp.dir, 'allow', { rego: 'package envoy.authz\n\ndefault allow := true\n', revision: 'allow' });
      tmp.write('rl-0.yaml', 'domain: d\ndescriptors:\n  - key: user\n    rate_limit: { unit: day, requests_per_unit: 5 }\n');
      tmp.write('rl-1.yaml', 'domain: d\ndescriptors:\n  - key: client\n    rate_limit: { unit: day, requests_per_unit: 5 }\n');
      // Each generation differs in what every shared component is built from: new Redis
      // connections, deny list, buckets and policy stage each time, the old ones closed.
      const cfg = (i: number): string =>
        tmp.write(
          'leak.yaml',
          configYaml({
            server: { address: '127.0.0.1:0' },
            redis: { url: redis.url, command_timeout_ms: 500 + i },
            revocation: { store: 'redis' },
            ratelimit: { store: 'redis', files: [`rl-${i % 2}.yaml`] },
            policy: { bundle: { file: 'allow.tar.gz', poll_interval_ms: 1000 + i } },
            reload: { debounce_ms: 20 },
          }),
        );
      // Unreferenced timers are not in getActiveResourcesInfo(): count the intervals (every
      // poller, pruner and health refresher) created and not cleared while the service runs.
      const live = new Set<unknown>();
      const { setInterval: realSet, clearInterval: realClear } = globalThis;
      globalThis.setInterval = ((...args: Parameters<typeof realSet>) => {
        const t = realSet(...args);
        live.add(t);
        return t;
      });
      globalThis.clearInterval = ((t: Parameters<typeof realClear>[0]) => {
        live.delete(t);
        realClear(t);
      });
      const svc = await startInProcess(cfg(0));
      const rls = rlsClient(svc.address);
      const census = (): Record<string, number> => {
        const out: Record<string, number> = { fds: readdirSync('/proc/self/fd').length, intervals: live.size };
        for (const r of process.getActiveResourcesInfo()) out[r] = (out[r] ?? 0) + 1;
        return out;
      };
      const reloadTo = async (i: number): Promise<void> => {
        cfg(i);
        // Through the watcher, as in production.
        await until(`generation ${i + 1}`, () => svc.config().generation === i + 1);
        expect((await rls.shouldRateLimit('d', [[['user', `u${i}`]]])).overall_code).toBe('OK');
      };
      try {
        await reloadTo(1);
        await reloadTo(2);
        await sleep(300);
        const before = census();
        for (let i = 3; i < 23; i++) await reloadTo(i);
        // What the last reloads closed may take a moment to go: read again until nothing is over
        // the baseline, for up to 5 s.
        const over = (): boolean => Object.entries(census()).some(([kind, n]) => n > (before[kind] ?? 0));
        for (const until = Date.now() + 5000; Date.now() < until && over(); ) await sleep(100);
        const after = census();
        for (const [kind, n] of Object.entries(after)) expect({ kind, n }).toEqual({ kind, n: Math.min(n, before[kind] ?? 0) });
        expect(svc.config()).toMatchObject({ generation: 23, reloads: { success: 22, failure: 0 } });
      } finally {
        rls.close();
        await svc.shutdown();
        globalThis.setInterval = realSet;
        globalThis.clearInterval = realClear;
      }
    });

    it('refuses a reload whose live keys clash with the running value of a restart-only key (workers > 1 needs Redis stores)', async () => {
      const cfg = (shared: boolean): string =>
        tmp.write(
          'clash.yaml',
          configYaml({
            server: { address: '127.0.0.1:0', workers: shared ? 2 : 1 },
            ...(shared ? { ratelimit: { store: 'redis' }, revocation: { store: 'redis' }, redis: { url: redis.url } } : {}),
            reload: { watch: false, poll_interval_ms: 0 },
          }),
        );
      // In process: the workers key is read, not acted on (main.ts forks).
      const svc = await startInProcess(cfg(true));
      try {
        cfg(false);
        const r = await svc.reload();
        expect(r).toMatchObject({ ok: false, generation: 1 });
        const problems = r.ok ? [] : r.problems;
        expect(problems.map((p) => p.key_path)).toEqual(['/server/workers', '/server/workers']);
        expect(problems[0]!.problem).toContain('ratelimit.store: redis (buckets shared by all workers) (with the running value of /server/workers, which needs a restart)');
        expect(svc.config().last_error?.problems[0]?.key_path).toBe('/server/workers');
      } finally {
        await svc.shutdown();
      }
    });

    it('with server.workers 2: the primary forwards SIGHUP and each worker reloads', async () => {
      tmp.write('w.yaml', 'domain: d\ndescriptors:\n  - key: user\n    rate_limit: { unit: day, requests_per_unit: 5 }\n');
      const file = tmp.write(
        'workers.yaml',
        configYaml({
          server: { address: `127.0.0.1:${await freePort()}`, workers: 2 },
          ratelimit: { files: ['w.yaml'], store: 'redis' },
          revocation: { store: 'redis' },
          redis: { url: redis.url, command_timeout_ms: 1000 },
          reload: { watch: false, poll_interval_ms: 0 },
        }),
      );
      const svc = await spawnService(['--config', file]);
      try {
        await until('both workers', () => svc.lines.filter((l) => l.event === 'workers_ready').length === 1, 20_000);
        svc.child.kill('SIGHUP');
        const reloaded = (): unknown[] => svc.lines.filter((l) => l.event === 'config_reloaded' && l.trigger === 'signal').map((l) => l.worker);
        await until('both reloads', () => reloaded().length >= 2, 20_000);
        expect(reloaded().sort()).toEqual([0, 1]);
      } finally {
        expect(await svc.stop()).toBe(0);
      }
    });
  });
});
