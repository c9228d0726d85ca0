// The fast RateLimitResponse writer against protobufjs's generic encoder (what proto-loader's
// responseSerialize does): the same bytes for every shape toRateLimitResponse sends, and the
// generic path for any shape it does not cover.
import { describe, expect, it } from 'vitest';
import { envoyProtos } from '../../../src/envoy/protos.js';
import type { RateLimitResponse } from '../../../src/gen/envoy/service/ratelimit/v3/RateLimitResponse.js';
import { rateLimitHeaders } from '../../../src/ratelimit/headers.js';
import type { BucketState, Limit } from '../../../src/ratelimit/limits.js';
import type { DescriptorResult, RateLimitDecision } from '../../../src/ratelimit/limiter.js';
import { rateLimitResponseWriter } from '../../../src/server/rls-response-wire.js';
import { toRateLimitResponse } from '../../../src/server/rls-service.js';
import { testLimit } from '../../helpers/limits.js';
import { writerBesideGeneric } from '../../helpers/wire.js';

const def = envoyProtos().envoy.service.ratelimit.v3.RateLimitService.service.ShouldRateLimit;
const generic = (v: unknown): Buffer => def.responseSerialize(v as RateLimitResponse);
const { fast, same } = writerBesideGeneric(rateLimitResponseWriter, generic);

const unicode = 'héllo wörld – ✓ 𝄞'.repeat(12); // multi-byte and surrogate pairs, longer than 127 bytes
const state = (over: Partial<BucketState> = {}): BucketState => ({ allowed: true, remaining: 99, resetMs: 41_250, retryAfterMs: 0, used: 1, ...over });
const limited = (limit: Limit, s: BucketState, over = !s.allowed): DescriptorResult => ({ over, limit, state: s, shadowOver: false, near: false, limitLabel: 'l' });

describe('rateLimitResponseWriter', () => {
  const perSecond = testLimit({ requestsPerUnit: 1_000_000, windowSeconds: 1, reportedUnit: 'SECOND', algorithm: 'fixed_window' });
  const named = testLimit({ name: 'per-user', requestsPerUnit: 100, windowSeconds: 60, reportedUnit: 'MINUTE' });
  const custom = testLimit({ name: unicode, requestsPerUnit: 4_294_967_295, windowSeconds: 7 * 86400, reportedUnit: 'UNKNOWN' });
  const decisions: [string, RateLimitDecision][] = [
    ['one descriptor, within, draft headers', { over: false, descriptors: [limited(perSecond, state({ remaining: 999_999, resetMs: 416 }))], headers: rateLimitHeaders('draft', perSecond, state({ remaining: 999_999, resetMs: 416 }), false) }],
    [
      'three descriptors, one over, every header',
      {
        over: true,
        descriptors: [limited(perSecond, state()), limited(named, state({ allowed: false, remaining: 0, resetMs: 59_999, retryAfterMs: 59_999 })), limited(custom, state({ remaining: 4_294_967_295, resetMs: 7 * 86400 * 1000 }))],
        headers: rateLimitHeaders('both', named, state({ allowed: false, remaining: 0, resetMs: 59_999, retryAfterMs: 59_999 }), true),
      },
    ],
    ['no limit matched, unlimited, shadow over', { over: false, descriptors: [{ over: false, shadowOver: false }, { over: false, shadowOver: false, unlimited: true }, { over: false, shadowOver: true }], headers: [] }],
    ['a reset at zero ms, nothing remaining', { over: true, descriptors: [limited(named, state({ allowed: false, remaining: 0, resetMs: 0 }))], headers: [] }],
    ['long header values', { over: false, descriptors: [limited(named, state())], headers: [['x-long', unicode], ['', '']] }],
  ];
  for (const [name, d] of decisions) it(`writes protobufjs's bytes: ${name}`, () => same(toRateLimitResponse(d)));

  it('writes nested messages of every length (one- and two-byte lengths) and many statuses', () => {
    for (const n of [0, 1, 30, 120, 200, 1000, 20_000]) {
      const l = testLimit({ name: 'n'.repeat(n), requestsPerUnit: n, reportedUnit: 'HOUR' });
      same(toRateLimitResponse({ over: false, descriptors: Array.from({ length: 50 }, () => limited(l, state({ remaining: n }))), headers: [['k'.repeat(n), 'v'.repeat(n)]] }));
    }
  });

  it('writes fields present at their default value, enums given as numbers, and large integers', () => {
    same({ overall_code: 0, statuses: [{ code: 'UNKNOWN', current_limit: { requests_per_unit: 0, unit: 0, name: '' }, limit_remaining: 0, duration_until_reset: { seconds: 0, nanos: 0 } }], response_headers_to_add: [{ key: '', value: '' }] });
    same({ overall_code: 2, statuses: [{ code: 1, current_limit: { unit: 'YEAR' }, duration_until_reset: { seconds: 2 ** 40, nanos: 999_999_999 } }, {}] });
    same({ statuses: [], response_headers_to_add: [] });
    same({ overall_code: 7, statuses: [{ code: 3, current_limit: { unit: 9 } }] }); // numbers outside the enum are kept, as protobufjs does
    same({});
  });

  it('hands shapes it does not cover to the generic encoder', () => {
    same({ overall_code: 'OK', raw_body: Buffer.from('x') }, true);
    same({ overall_code: 'OK', request_headers_to_add: [{ key: 'k', value: 'v' }] }, true);
    same({ response_headers_to_add: [{ key: 'k', raw_value: Buffer.from('v') }] }, true);
    same({ statuses: [{ code: 'OK', quota: { requests: 1 } }] }, true);
    // Values whose protobufjs encoding is not a plain varint, or that it converts first.
    same({ statuses: [{ code: -1 }] }, true);
    same({ statuses: [{ limit_remaining: 2 ** 32 }] }, true);
    same({ statuses: [{ limit_remaining: 1.5 }] }, true);
    same({ statuses: [{ duration_until_reset: { seconds: '5', nanos: -1 } }] }, true);
    same({ overall_code: 'NOT_A_CODE' }, true);
    // A lone surrogate: protobufjs writes it as three raw bytes, Buffer#write as U+FFFD.
    same({ response_headers_to_add: [{ key: 'k', value: 'a\ud800b' }] }, true);
    same({ response_headers_to_add: [{ key: '\udc00', value: 'v' }] }, true);
  });

  it('leaves no state behind: a large answer, then a small one', () => {
    const big = toRateLimitResponse({ over: false, descriptors: Array.from({ length: 300 }, () => limited(custom, state())), headers: [] });
    same(big);
    same(toRateLimitResponse(decisions[0]![1]));
    expect(fast(big).equals(generic(big))).toBe(true);
  });
});
