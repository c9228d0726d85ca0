// The real process: startup errors are one clear message and a non-zero exit; SIGTERM drains.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { authzClient, healthCheck } from '../helpers/grpc.js';
import { loopbackServer, sendJson } from '../helpers/http.js';
import { AUDIENCE, ISSUER, jwks, makeKey, signToken } from '../helpers/keys.js';
import { checkRequest } from '../helpers/requests.js';
import { ROOT, configYaml, runService, spawnCommand, spawnService, type ServiceProcess } from '../helpers/service.js';
import { tempDir } from '../helpers/tmp.js';
import { cpuBudget } from '../../src/lib/cpu-budget.js';

const STACK_TRACE = /^\s+at /m;

describe('startup', () => {
  const tmp = tempDir();

  it('exits 2 on an invalid config, naming file, key path and problem, without a stack trace', async () => {
    const file = join(ROOT, 'test', 'fixtures', 'config', 'invalid', 'unknown-nested-key.yaml');
    const r = await runService(['--config', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${file}: /server/adress: unknown key`);
    expect(r.stderr).not.toMatch(STACK_TRACE);
    expect(r.stdout).toBe('');
  });

  it('takes the config path from AUTHZ_CONFIG too', async () => {
    const file = tmp.write('bad-env.yaml', 'check: {deadline_ms: -1}\n');
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'main.ts')], { cwd: ROOT, env: { ...process.env, AUTHZ_CONFIG: file } });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise((r) => child.once('exit', r));
    expect(code).toBe(2);
    expect(stderr).toContain(`${file}: /check/deadline_ms:`);
  });

  it('exits 2 when a referenced file is missing, naming the key that points at it', async () => {
    const file = tmp.write('missing-jwks.yaml', configYaml({ authentication: { jwt: { issuers: [{ issuer: 'a', audiences: ['b'], jwks: { file: 'nope.json' } }] } } }));
    const r = await runService(['--config', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${file}: /authentication/jwt/issuers/0/jwks/file:`);
    expect(r.stderr).toContain('ENOENT');
    expect(r.stderr).not.toMatch(STACK_TRACE);
  });

  it('exits 1 with one line when the port is taken', async () => {
    const busy = await loopbackServer(() => undefined);
    const file = tmp.write('busy.yaml', configYaml({ server: { address: busy.url.replace('http://', '') } }));
    const r = await runService(['--config', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^envoy-authz: cannot start: /);
    expect(r.stderr).not.toMatch(STACK_TRACE);
  });

  it('--check-config validates without listening', async () => {
    const key = await makeKey();
    tmp.write('ok-jwks.json', jwks(key));
    const file = tmp.write('ok.yaml', configYaml({ authentication: { jwt: { issuers: [{ issuer: 'a', audiences: ['b'], jwks: { file: 'ok-jwks.json' } }] } } }));
    const r = await runService(['--config', file, '--check-config']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${file}: ok\n`);
  });

  it('rejects unknown flags', async () => {
    const r = await runService(['--nope']);
    expect(r.code).toBe(1);
    expect(r.stderr).not.toMatch(STACK_TRACE);
  });
});

describe('SIGTERM', () => {
  const tmp = tempDir();

  it('turns health NOT_SERVING, lets in-flight calls finish, then exits 0', async () => {
    const key = await makeKey();
    // A JWKS endpoint that answers slowly keeps one Check in flight across the signal.
    const slow = await loopbackServer((_req, res) => setTimeout(() => sendJson(res, jwks(key)), 800));
    const file = tmp.write(
      'drain.yaml',
      configYaml({
        // A drain long enough for the health checks below to connect on a stalled machine.
        server: { address: '127.0.0.1:0', shutdown_drain_ms: 2000, shutdown_grace_ms: 5000 },
        check: { deadline_ms: 5000 },
        authentication: { jwt: { issuers: [{ issuer: ISSUER, audiences: [AUDIENCE], jwks: { url: `${slow.url}/jwks`, allow_insecure_http: true } }] } },
      }),
    );
    const svc = await spawnService(['--config', file]);
    expect(await healthCheck(svc.address)).toBe('SERVING');

    const client = authzClient(svc.address);
    const inflight = client.check(checkRequest({ headers: { authorization: `Bearer ${await signToken(key)}` } }), 5000);
    await new Promise((r) => setTimeout(r, 100));
    svc.child.kill('SIGTERM');

    await expect.poll(() => healthCheck(svc.address), { timeout: 1500, interval: 50 }).toBe('NOT_SERVING');
    expect(await healthCheck(svc.address, 'envoy.service.auth.v3.Authorization')).toBe('NOT_SERVING');
    const res = await inflight;
    expect(res.status?.code).toBe(0);
    client.close();

    expect(await svc.exited).toBe(0);
    const events = svc.lines.map((l) => l.event);
    expect(events).toEqual(expect.arrayContaining(['started', 'signal', 'stopping', 'stopped']));
    expect(events).not.toContain('shutdown_forced');
  });
});

describe('--check-config reads everything the config names', () => {
  const tmp = tempDir();
  it('refuses a broken rate-limit file and a broken policy bundle, naming them', async () => {
    tmp.write('bad-limits.yaml', 'domain: d\nbogus: 1\n');
    const rl = await runService(['--config', tmp.write('rl.yaml', configYaml({ ratelimit: { files: ['bad-limits.yaml'] } })), '--check-config']);
    expect(rl.code).toBe(2);
    expect(rl.stderr).toContain('bad-limits.yaml: /bogus: unknown key');
    tmp.write('bad.tar.gz', 'not a bundle');
    const pol = await runService(['--config', tmp.write('pol.yaml', configYaml({ policy: { bundle: { file: 'bad.tar.gz' } } })), '--check-config']);
    expect(pol.code).toBe(2);
    expect(pol.stderr).toContain('/policy/bundle/file: not a readable bundle');
  });
});

describe('--check-config and a real start agree (one composition root)', () => {
  const tmp = tempDir();

  // Each config is refused by both, with the same key path: the dry run builds what a start builds.
  const cases: [string, () => Record<string, unknown>, string][] = [
    ['a port above 65535', () => ({ server: { address: '127.0.0.1:99999' } }), '/server/address: "127.0.0.1:99999" is not host:port with a port from 0 to 65535'],
    ['revocation in Redis without a redis section', () => ({ revocation: { store: 'redis' } }), '/revocation/store: redis needs the redis section'],
    [
      'a bundle whose policy.wasm is not WebAssembly',
      () => {
        const src = join(tmp.dir, 'corrupt-src');
        mkdirSync(src, { recursive: true });
        writeFileSync(join(src, 'policy.wasm'), 'this is not wasm');
        writeFileSync(join(src, 'data.json'), '{}');
        execFileSync('tar', ['-czf', join(tmp.dir, 'corrupt.tar.gz'), '-C', src, 'policy.wasm', 'data.json']);
        return { policy: { bundle: { file: 'corrupt.tar.gz' } } };
      },
      '/policy/bundle/file: ',
    ],
  ];
  it.each(cases)('both refuse %s', async (name, config, message) => {
    const file = tmp.write(`${name.replace(/\W+/g, '-')}.yaml`, configYaml(config()));
    const check = await runService(['--config', file, '--check-config']);
    const start = await runService(['--config', file]);
    for (const r of [check, start]) {
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`${file}: ${message}`);
      expect(r.stderr).not.toMatch(STACK_TRACE);
    }
    const problem = (stderr: string): string | undefined => stderr.split('\n').find((l) => l.includes(`${file}: `));
    expect(problem(check.stderr)).toBe(problem(start.stderr));
  }, 60_000);

  it('names Redis, its address and the feature that needs it when Redis is down at startup', async () => {
    // A port nothing listens on: connection refused, fast.
    const dead = await loopbackServer(() => undefined);
    const port = Number(new URL(dead.url).port);
    await dead.close();
    const file = tmp.write(
      'redis-down.yaml',
      configYaml({ revocation: { store: 'redis' }, redis: { url: `redis://user:s3cret@127.0.0.1:${port}/0`, connect_timeout_ms: 500, command_timeout_ms: 500 } }),
    );
    // The dry run connects to nothing, so it passes; the start cannot load the deny list.
    expect((await runService(['--config', file, '--check-config'])).code).toBe(0);
    const r = await runService(['--config', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^envoy-authz: cannot start: revocation.store is redis, and Redis at redis:\/\/127\.0\.0\.1:\d+\/0 cannot be reached/);
    expect(r.stderr).not.toContain('s3cret');
    expect(r.stderr).not.toMatch(STACK_TRACE);
  }, 60_000);
});

describe('startup errors are bounded lines', () => {
  const tmp = tempDir();
  it('cuts a problem line that a hostile value would make longer than 4 KB', async () => {
    const long = 'x'.repeat(6000);
    const file = tmp.write('long.yaml', configYaml({ routes: [{ name: long, match: { path_prefix: '/' } }, { name: long, match: { path_prefix: '/' } }] }));
    const r = await runService(['--config', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('duplicate route name');
    for (const line of r.stderr.split('\n')) expect(Buffer.byteLength(line)).toBeLessThan(4096);
    expect(r.stderr).toMatch(/\.\.\.\[\+\d+ chars\]/);
  }, 60_000);
});

describe('GC threads for the CPUs the process has (src/server/gc-threads.ts)', () => {
  const tmp = tempDir();
  const entrypoint = join(ROOT, 'deploy', 'entrypoint.sh');
  const config = (name: string): string => tmp.write(name, configYaml({ server: { address: '127.0.0.1:0' }, admin: { address: '127.0.0.1:0' } }));
  const started = (svc: ServiceProcess): Record<string, unknown>[] => svc.lines.filter((l) => l.event === 'started');

  it('the image entrypoint starts node with --single-threaded-gc --heap-growing-percent=10 on one CPU, and without them on two', async () => {
    const one = await spawnCommand('taskset', ['-c', '0', entrypoint, '--config', config('gc-one.yaml')]);
    expect(started(one)[0]?.gc).toBe('single_threaded');
    // Its heap grows by a fixed factor (src/server/gc-threads.ts, HEAP_GROWING).
    expect(started(one)[0]?.heap_growing).toBe('10%');
    // And checks JWT signatures on its event loop (src/authn/jws-event-loop.ts).
    expect(started(one)[0]?.jwt_signatures).toBe('event_loop');
    expect(one.lines.map((l) => l.event)).not.toContain('gc_threads');
    expect(await one.stop()).toBe(0);
    const two = await spawnCommand('taskset', ['-c', '0,1', entrypoint, '--config', config('gc-two.yaml')]);
    // Two CPUs, unless this machine's cgroup quota allows one (then one is right).
    expect(started(two)[0]?.gc).toBe(cpuBudget({ affinity: 2 }) > 1 ? 'concurrent' : 'single_threaded');
    expect(started(two)[0]?.jwt_signatures).toBe(cpuBudget({ affinity: 2 }) > 1 ? 'thread_pool' : 'event_loop');
    expect(started(two)[0]?.heap_growing).toBe(cpuBudget({ affinity: 2 }) > 1 ? 'v8' : '10%');
    expect(await two.stop()).toBe(0);
  });

  it('keeps an operator GC option given in NODE_OPTIONS, and a preload that prints does not become options', async () => {
    const agent = tmp.write('agent.cjs', "console.log('agent loaded');\n");
    const svc = await spawnCommand('taskset', ['-c', '0', entrypoint, '--config', config('gc-node-options.yaml')], { NODE_OPTIONS: `--require ${agent} --v8-pool-size=2` });
    expect(started(svc)[0]?.gc).toBe('concurrent');
    // The threading option was the operator's; the growing factor is still ours.
    expect(started(svc)[0]?.heap_growing).toBe('10%');
    expect(svc.lines.map((l) => l.event)).not.toContain('gc_threads');
    expect(await svc.stop()).toBe(0);
  });

  it('NODE_FLAGS replaces the entrypoint choice, and is never glob-expanded', async () => {
    // A file whose name the pattern would match, in the directory the entrypoint runs in.
    tmp.write('--title=authzX', '');
    const svc = await spawnCommand('taskset', ['-c', '0', entrypoint, '--config', config('gc-flags.yaml')], { NODE_FLAGS: '--v8-pool-size=2 --title=authz*' }, tmp.dir);
    expect(started(svc)[0]?.gc).toBe('concurrent');
    expect(started(svc)[0]?.heap_growing).toBe('v8');
    // taskset and the entrypoint exec: the pid is node's, and it got the pattern as written.
    // (--title sets the process title, which Linux shows as its command line.)
    expect(readFileSync(`/proc/${svc.child.pid}/cmdline`, 'utf8').split('\0')[0]).toBe('authz*');
    // The operator chose a GC threading option: no advice.
    expect(svc.lines.map((l) => l.event)).not.toContain('gc_threads');
    expect(await svc.stop()).toBe(0);
  });

  it('a SIGTERM during the start is a clean shutdown once the service is up, not a death by the signal', async () => {
    // The warning is logged before the start: the signal comes while the service is starting.
    const child = spawn('taskset', ['-c', '0', process.execPath, '--import', 'tsx', join(ROOT, 'src', 'main.ts'), '--config', config('gc-early-term.yaml')], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const events: unknown[] = [];
    let buffered = '';
    child.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        const event = (JSON.parse(line) as { event?: string }).event;
        events.push(event);
        if (event === 'gc_threads') child.kill('SIGTERM');
      }
    });
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('exit', (c, sig) => resolve([c, sig])));
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(events).toEqual(expect.arrayContaining(['gc_threads', 'started', 'signal']));
    expect(events.indexOf('signal')).toBeGreaterThan(events.indexOf('started'));
  }, 60_000);

  it('node started without it on one CPU says so once, naming the option', async () => {
    const svc = await spawnCommand('taskset', ['-c', '0', process.execPath, '--import', 'tsx', join(ROOT, 'src', 'main.ts'), '--config', config('gc-warn.yaml')]);
    const warnings = svc.lines.filter((l) => l.event === 'gc_threads');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ level: 'warn', cpus: 1 });
    expect(String(warnings[0]?.msg)).toContain('--single-threaded-gc --heap-growing-percent=10');
    expect(started(svc)[0]?.gc).toBe('concurrent');
    expect(started(svc)[0]?.heap_growing).toBe('v8');
    expect(await svc.stop()).toBe(0);
  });

});
