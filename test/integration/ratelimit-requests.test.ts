// ShouldRateLimit requests at the edges, through the real gRPC server with the in-process store:
// a limit of 0, and more descriptors than one request may carry (refused before any bucket is
// touched, so the refusal spends nothing).
import { status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rlsClient, type RlsClient } from '../helpers/grpc.js';
import { configYaml, startInProcess } from '../helpers/service.js';
import { tempDir } from '../helpers/tmp.js';

const LIMITS = `domain: edge
descriptors:
  - key: user
    rate_limit: {unit: hour, requests_per_unit: 5, name: per-user}
  - key: closed
    rate_limit: {unit: minute, requests_per_unit: 0, name: closed}
  - key: closed_quota
    rate_limit: {unit: minute, requests_per_unit: 0, quota: true}
`;

const headersOf = (r: { response_headers_to_add?: { key?: string; value?: string }[] }): Record<string, string | undefined> =>
  Object.fromEntries((r.response_headers_to_add ?? []).map((h) => [h.key ?? '', h.value]));

const errOf = (p: Promise<unknown>): Promise<ServiceError> =>
  p.then(
    () => {
      throw new Error('expected a gRPC error');
    },
    (e: unknown) => e as ServiceError,
  );

describe('ShouldRateLimit at the edges (memory store)', () => {
  const tmp = tempDir();
  let svc: Awaited<ReturnType<typeof startInProcess>>;
  let client: RlsClient;

  beforeAll(async () => {
    tmp.write('limits.yaml', LIMITS);
    svc = await startInProcess(tmp.write('rls.yaml', configYaml({ server: { address: '127.0.0.1:0' }, ratelimit: { files: ['limits.yaml'], headers: 'both' } })));
    client = rlsClient(svc.address);
  });
  afterAll(async () => {
    client?.close();
    await svc?.shutdown();
  });

  it.each(['closed', 'closed_quota'])('answers requests_per_unit 0 (%s) as over limit until the minute ends, with finite headers', async (key) => {
    const r = await client.shouldRateLimit('edge', [[[key, 'x']]]);
    expect(r.overall_code).toBe('OVER_LIMIT');
    expect(r.statuses?.[0]).toMatchObject({ code: 'OVER_LIMIT', current_limit: { requests_per_unit: 0, unit: 'MINUTE' }, limit_remaining: 0 });
    const d = r.statuses?.[0]?.duration_until_reset;
    const resetMs = Number(d?.seconds) * 1000 + (d?.nanos ?? 0) / 1e6;
    expect(resetMs).toBeGreaterThan(0);
    expect(resetMs).toBeLessThanOrEqual(60_000);
    const h = headersOf(r);
    const t = String(Math.ceil(resetMs / 1000));
    expect(h).toEqual({
      'ratelimit-policy': expect.stringMatching(/;q=0;w=60$/) as unknown,
      ratelimit: expect.stringMatching(new RegExp(`;r=0;t=${t}$`)) as unknown,
      'x-ratelimit-limit': '0, 0;w=60',
      'x-ratelimit-remaining': '0',
      'x-ratelimit-reset': t,
      'retry-after': t,
    });
    expect(JSON.stringify(r)).not.toContain('NaN');
  });

  it('refuses more descriptors than ratelimit.max_descriptors with INVALID_ARGUMENT, spending nothing', async () => {
    const alice: [string, string][] = [['user', 'alice']];
    // 10,000 descriptors: the answer would exceed the 64 KiB send limit, and was refused only after
    // the tokens were spent.
    for (const n of [65, 10_000]) {
      const err = await errOf(client.shouldRateLimit('edge', Array.from({ length: n }, () => alice)));
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.details).toBe(`too many descriptors: ${n}, at most 64 per request (ratelimit.max_descriptors)`);
    }
    const r = await client.shouldRateLimit('edge', [alice]);
    expect(r.overall_code).toBe('OK');
    expect(r.statuses?.[0]?.limit_remaining).toBe(4); // the first hit on alice's bucket
    expect(svc.logs.lines().filter((l) => l.event === 'ratelimit_refused')).toHaveLength(2);
  });

  it('answers a request of exactly max_descriptors', async () => {
    const r = await client.shouldRateLimit('edge', Array.from({ length: 64 }, (_, i): [string, string][] => [['user', `u${i}`]]));
    expect(r.overall_code).toBe('OK');
    expect(r.statuses).toHaveLength(64);
  });
});
