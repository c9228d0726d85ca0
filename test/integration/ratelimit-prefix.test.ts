// redis.key_prefix applies to rate-limit buckets and failure-guard counters too: two deployments
// sharing one Redis keep their limits apart.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rlsClient } from '../helpers/grpc.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { configYaml, startInProcess } from '../helpers/service.js';
import { tempDir } from '../helpers/tmp.js';

describe('redis.key_prefix for rate limits', () => {
  const tmp = tempDir();
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(() => redis?.stop());

  it('keeps the buckets of two deployments on one Redis apart, each under its own prefix', async () => {
    tmp.write('limits.yaml', 'domain: d\ndescriptors:\n  - key: user\n    rate_limit: { unit: day, requests_per_unit: 3 }\n');
    const start = (prefix: string): ReturnType<typeof startInProcess> =>
      startInProcess(
        tmp.write(
          `${prefix}.yaml`,
          configYaml({ server: { address: '127.0.0.1:0' }, redis: { url: redis.url, key_prefix: `${prefix}:`, command_timeout_ms: 2000 }, ratelimit: { files: ['limits.yaml'], store: 'redis', algorithm: 'fixed_window' } }),
        ),
      );
    const [a, b] = [await start('tenant-a'), await start('tenant-b')];
    try {
      const codes = async (address: string): Promise<string[]> => {
        const c = rlsClient(address);
        try {
          const out: string[] = [];
          for (let i = 0; i < 4; i++) out.push((await c.shouldRateLimit('d', [[['user', 'alice']]])).overall_code ?? '');
          return out;
        } finally {
          c.close();
        }
      };
      // Each deployment admits its own 3 a day.
      expect(await codes(a.address)).toEqual(['OK', 'OK', 'OK', 'OVER_LIMIT']);
      expect(await codes(b.address)).toEqual(['OK', 'OK', 'OK', 'OVER_LIMIT']);
      const keys = await redis.client.keys('*');
      expect(keys.length).toBeGreaterThanOrEqual(2);
      for (const k of keys) expect(k).toMatch(/^tenant-[ab]:/);
    } finally {
      await a.shutdown();
      await b.shutdown();
    }
  });
});
