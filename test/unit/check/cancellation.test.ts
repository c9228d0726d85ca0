// Cancelled work stops: the Check pipeline and the rate limiter honour the call's AbortSignal at
// their stage boundaries, so a reset call verifies no further credential and spends no tokens.
import { describe, expect, it } from 'vitest';
import type { AuthMethod, Authenticator, Credential } from '../../../src/authn/authenticator.js';
import { CheckPipeline, pipelineOptions } from '../../../src/check/pipeline.js';
import { RouteTable } from '../../../src/check/routes.js';
import { parseConfig } from '../../../src/config/loader.js';
import { UnavailableError } from '../../../src/lib/errors.js';
import { compileRateLimitFile } from '../../../src/ratelimit/config.js';
import { RateLimiter } from '../../../src/ratelimit/limiter.js';
import { MemoryStore } from '../../../src/ratelimit/memory-store.js';
import { requestView } from '../../helpers/requests.js';

class CountingAuthenticator implements Authenticator {
  readonly methods: readonly AuthMethod[] = ['jwt'];
  calls = 0;
  constructor(private readonly during: () => void = () => undefined) {}
  authenticate(): Promise<Credential | undefined> {
    this.calls += 1;
    this.during();
    return Promise.resolve(undefined);
  }
}

const cancelled = (): UnavailableError => new UnavailableError('cancelled', 'reset');

describe('cancellation', () => {
  const cfg = parseConfig('t.yaml', 'routes: [{name: open, match: {path_prefix: /}, public: true}]');
  const pipeline = (auth: Authenticator[]): CheckPipeline =>
    new CheckPipeline({ options: pipelineOptions(cfg.authentication), routes: new RouteTable(cfg.routes), authenticatorsFor: () => auth, credentialHeaders: [], untrustedHeaders: [] });

  it('a Check whose call is reset mid-way stops at the next stage: no further authenticator, no decision', async () => {
    const ac = new AbortController();
    const first = new CountingAuthenticator(() => ac.abort(cancelled()));
    const second = new CountingAuthenticator();
    await expect(pipeline([first, second]).check(requestView(), ac.signal)).rejects.toMatchObject({ code: 'cancelled' });
    expect([first.calls, second.calls]).toEqual([1, 0]);
    // The same pipeline without a reset decides (the public route allows).
    await expect(pipeline([new CountingAuthenticator()]).check(requestView(), new AbortController().signal)).resolves.toMatchObject({ allowed: true });
  });

  it('a Check already reset does no work at all', async () => {
    const ac = new AbortController();
    ac.abort(cancelled());
    const a = new CountingAuthenticator();
    await expect(pipeline([a]).check(requestView(), ac.signal)).rejects.toMatchObject({ code: 'cancelled' });
    expect(a.calls).toBe(0);
  });

  it('a ShouldRateLimit reset before the store call spends no tokens', async () => {
    const domain = compileRateLimitFile('t.yaml', 'domain: d\ndescriptors:\n  - key: k\n    rate_limit: {unit: day, requests_per_unit: 2}\n', { algorithm: 'fixed_window' });
    const limiter = new RateLimiter(() => new Map([['d', domain]]), new MemoryStore(1000), 'draft', 64);
    const ac = new AbortController();
    ac.abort(cancelled());
    for (let i = 0; i < 5; i++) await expect(limiter.shouldRateLimit('d', [[{ key: 'k', value: 'v' }]], 1, ac.signal)).rejects.toMatchObject({ code: 'cancelled' });
    const overs = [];
    for (let i = 0; i < 3; i++) overs.push((await limiter.shouldRateLimit('d', [[{ key: 'k', value: 'v' }]], 1)).over);
    expect(overs).toEqual([false, false, true]);
  });
});
