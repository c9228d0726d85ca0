// server.workers: several processes behind one gRPC port, sharing state through Redis.
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/ports.js';
import { rlsClient } from '../helpers/grpc.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { join } from 'node:path';
import { ROOT, configYaml, runService, spawnCommand, spawnService } from '../helpers/service.js';
import { tempDir } from '../helpers/tmp.js';

async function ready(port: number): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

describe('worker processes', () => {
  const tmp = tempDir();
  let redis: TestRedis;

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis.stop();
  });

  function config(port: number, admin: number): string {
    tmp.write('limits.yaml', 'domain: shared\ndescriptors:\n  - key: user\n    rate_limit: { unit: day, requests_per_unit: 10 }\n');
    return tmp.write(
      `workers-${port}.yaml`,
      configYaml({
        server: { address: `127.0.0.1:${port}`, workers: 2 },
        admin: { address: `127.0.0.1:${admin}` },
        ratelimit: { files: ['limits.yaml'], store: 'redis', algorithm: 'fixed_window' },
        revocation: { store: 'redis' },
        // Generous: this test is about shared buckets; on a loaded host a 100 ms command timeout
        // sends calls to the failure mode's local buckets (and more than ten through).
        redis: { url: redis.url, command_timeout_ms: 2000 },
      }),
    );
  }

  it('serves one port from two workers that share the rate-limit buckets, each with its own admin port, and stops on SIGTERM', async () => {
    const [port, admin] = [await freePort(), await freePort(2)];
    const svc = await spawnService(['--config', config(port, admin)]);
    try {
      expect(await ready(admin)).toBe(true);
      expect(await ready(admin + 1)).toBe(true);
      // A worker's admin port can answer before its `started` line has reached our pipe.
      await expect.poll(() => svc.lines.filter((l) => l.event === 'started').map((l) => l.worker).sort(), { timeout: 10_000 }).toEqual([0, 1]);
      // Six connections of their own (grpc-js would share one), which the primary hands to the workers in turn.
      const clients = Array.from({ length: 6 }, () => rlsClient(`127.0.0.1:${port}`, { ownConnection: true }));
      const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => clients[i % clients.length]!.shouldRateLimit('shared', [[['user', 'alice']]])));
      clients.forEach((c) => c.close());
      // Ten a day in total, not ten per worker. A day, because fixed windows are aligned on the
      // epoch: calls straddling a minute's end were counted in two windows (the likely cause of
      // 15 admitted, seen once in a full run). More than ten can also mean calls went to the
      // failure mode's local buckets: the message then says why.
      const storeTrouble = svc.lines.filter((l) => l.event === 'ratelimit_store_failed' || l.event === 'redis_error');
      expect(answers.filter((a) => a.overall_code === 'OK'), `Redis trouble: ${JSON.stringify(storeTrouble)}`).toHaveLength(10);
      expect(answers.filter((a) => a.overall_code === 'OVER_LIMIT')).toHaveLength(20);
      // And both workers answer: each over-limit answer is logged by its worker. The primary hands
      // connections to whichever worker is free, so on a busy host one worker may take all six:
      // then more connections, one at a time, until the other answers too (at most 20).
      const answeredBy = (): unknown[] => [...new Set(svc.lines.filter((l) => l.event === 'ratelimit').map((l) => l.worker))].sort();
      for (let i = 0; i < 50 && answeredBy().length < 2; i++) await new Promise((r) => setTimeout(r, 50));
      for (let i = 0; i < 20 && answeredBy().length < 2; i++) {
        const extra = rlsClient(`127.0.0.1:${port}`, { ownConnection: true });
        expect((await extra.shouldRateLimit('shared', [[['user', 'alice']]])).overall_code).toBe('OVER_LIMIT');
        extra.close();
        for (let j = 0; j < 10 && answeredBy().length < 2; j++) await new Promise((r) => setTimeout(r, 50));
      }
      expect(answeredBy()).toEqual([0, 1]);
    } finally {
      expect(await svc.stop('SIGTERM')).toBe(0);
    }
  });

  it('starts workers that share the CPUs one each with --single-threaded-gc --heap-growing-percent=10 (src/server/gc-threads.ts)', async () => {
    const [port, admin] = [await freePort(), await freePort(2)];
    const svc = await spawnCommand('taskset', ['-c', '0,1', process.execPath, '--import', 'tsx', join(ROOT, 'src', 'main.ts'), '--config', config(port, admin)]);
    try {
      const started = (): Record<string, unknown>[] => svc.lines.filter((l) => l.event === 'started');
      // The first worker's `started` resolved the spawn; the second follows.
      for (let i = 0; i < 200 && started().length < 2; i++) await new Promise((r) => setTimeout(r, 50));
      expect(started().map((l) => l.gc)).toEqual(['single_threaded', 'single_threaded']);
      expect(started().map((l) => l.heap_growing)).toEqual(['10%', '10%']);
      expect(started().map((l) => l.jwt_signatures)).toEqual(['event_loop', 'event_loop']);
      // The primary chose for them: no advice logged.
      expect(svc.lines.map((l) => l.event)).not.toContain('gc_threads');
    } finally {
      expect(await svc.stop('SIGTERM')).toBe(0);
    }
  });

  it('exits non-zero when a worker cannot start (port taken), instead of restarting it forever', async () => {
    const blocker = createServer();
    const port = await new Promise<number>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve((blocker.address() as { port: number }).port)));
    try {
      const r = await runService(['--config', config(port, await freePort(2))]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('cannot start');
    } finally {
      blocker.close();
    }
  });
});
