// The fast CheckResponse writer against protobufjs's generic encoder (what proto-loader's
// responseSerialize does): the same bytes for every shape we send, and the generic path for any
// shape it does not cover.
import { describe, expect, it } from 'vitest';
import type { Decision } from '../../../src/check/decision.js';
import { checkResponseWriter } from '../../../src/envoy/check-response-wire.js';
import { envoyProtos } from '../../../src/envoy/protos.js';
import { toCheckResponse } from '../../../src/envoy/response.js';
import type { CheckResponse } from '../../../src/gen/envoy/service/auth/v3/CheckResponse.js';
import { toPolicyDecision } from '../../../src/policy/decision.js';
import { writerBesideGeneric } from '../../helpers/wire.js';

const def = envoyProtos().envoy.service.auth.v3.Authorization.service.Check;
const generic = (v: unknown): Buffer => def.responseSerialize(v as CheckResponse);
const { fast, same } = writerBesideGeneric(checkResponseWriter, generic);

const identity = { subject: 'u1', issuer: 'https://issuer.example', kind: 'user', method: 'jwt', scopes: [], roles: [], workload: { id: 'spiffe://d/w', method: 'mtls' }, claims: {} } as const;
const long = 'x'.repeat(300);
const unicode = 'héllo wörld – ✓ 𝄞'.repeat(5); // multi-byte, surrogate pairs, longer than the one-byte length fast path

describe('checkResponseWriter', () => {
  const decisions: [string, Decision][] = [
    ['allow, nothing', { allowed: true, route: 'r', upstreamHeaders: {}, removeHeaders: [], additions: false }],
    ['allow with identity', { allowed: true, route: 'default', identity, upstreamHeaders: { 'x-auth-subject': 'u1', 'x-auth-issuer': 'https://i', authorization: `Bearer ${long}` }, removeHeaders: ['authorization', 'cookie'], policyRevision: 'rev-1', decisionId: '0d9f1a2c-0000-4000-8000-000000000001' }],
    [
      'allow with every policy field',
      {
        allowed: true,
        route: 'r',
        identity,
        upstreamHeaders: { 'x-a': unicode },
        removeHeaders: ['x-b'],
        decisionId: 'd',
        policy: toPolicyDecision({
          allowed: true,
          headers: { 'x-policy': 'v', 'x-multi': ['a', 'b'] },
          response_headers_to_add: { 'x-resp': 'r' },
          request_headers_to_remove: ['x-gone'],
          query_parameters_to_set: { q: ['1', unicode], p: '' },
          query_parameters_to_remove: ['debug'],
          dynamic_metadata: { n: 1.5, neg: -3, big: 2 ** 60, t: true, f: false, nil: null, s: unicode, list: [1, 'two', null, [3], { four: 4 }], nested: { deeper: { deepest: [] } }, '42': 'integer-like key', '': 'empty key' },
        }),
      },
    ],
    ['allow, bare true', { allowed: true, route: 'r', upstreamHeaders: {}, removeHeaders: [], additions: false, policy: toPolicyDecision(true) }],
    ['deny 401', { allowed: false, route: 'r', status: 401, reason: 'credential_missing', challenge: 'Bearer realm="api"' }],
    ['deny 429', { allowed: false, route: 'r', status: 429, reason: 'too_many_failures', retryAfterSeconds: 60 }],
    ['deny 503', { allowed: false, route: 'error', status: 503, reason: 'deadline_exceeded' }],
    ['deny, a status Envoy does not name', { allowed: false, route: 'error', status: 599, reason: 'internal' }],
    ['deny, policy status and body', { allowed: false, route: 'r', status: 409, reason: 'policy_denied', policy: toPolicyDecision({ allowed: false, http_status: 409, body: unicode }) }],
    ['deny, policy body empty', { allowed: false, route: 'r', status: 403, reason: 'policy_denied', policy: toPolicyDecision({ allowed: false, body: '' }), additions: true, decisionId: 'd' }],
    ['deny, bare false', { allowed: false, route: 'r', status: 403, reason: 'policy_denied', policy: toPolicyDecision(false), additions: false }],
    ['parse error', { allowed: false, route: 'r', status: 400, reason: 'request_parse_error', parseError: `invalid URL escape "%zz" ${long}` }],
    ['problem', { allowed: false, route: 'r', status: 422, reason: 'openapi_invalid_parameter', problem: { status: 422, body: '{"type":"about:blank"}', headers: [['x-problem', 'p']], errors: [] } }],
  ];
  for (const [name, d] of decisions) it(`writes protobufjs's bytes: ${name}`, () => same(toCheckResponse(d)));

  it('writes a lone surrogate as U+FFFD (valid UTF-8, as Buffer#write does), where protobufjs writes bytes that are not UTF-8 in a short string', () => {
    // protobufjs encodes strings under 40 units itself (three bytes per lone surrogate) and longer
    // ones with Buffer#write (U+FFFD): ours is U+FFFD at every length.
    for (const [odd, plain, short] of [
      ['a\ud800b', 'a\ufffdb', true],
      ['\udc00', '\ufffd', true],
      [`${'x'.repeat(30)}\ud83d`, `${'x'.repeat(30)}\ufffd`, true],
      [`${long}\udfff`, `${long}\ufffd`, false],
    ] as const) {
      const answer = (v: string): unknown => toCheckResponse({ allowed: true, route: 'r', upstreamHeaders: { 'x-odd': v }, removeHeaders: [], additions: false });
      expect(fast(answer(odd)).toString('hex')).toBe(generic(answer(plain)).toString('hex'));
      expect(generic(answer(odd)).equals(generic(answer(plain)))).toBe(!short);
    }
  });

  it('writes negative and large numbers, and enum values given as numbers', () => {
    same({ status: { code: -1, message: 'm' }, denied_response: { status: { code: 403 }, headers: [{ header: { key: 'k', value: 'v' }, append_action: 3, keep_empty_value: true, append: { value: false } }] } });
    same({ status: { code: 2 ** 31 - 1 } });
    same({ dynamic_metadata: { fields: { x: { numberValue: Number.NaN }, y: { numberValue: -0 }, z: { nullValue: 0 } } } });
  });

  it('writes a field present at its default value, as protobufjs does', () => {
    same({ status: { code: 0, message: '' }, ok_response: { headers: [], headers_to_remove: [''] } });
  });

  it('hands shapes it does not cover to the generic encoder', () => {
    same({ status: { code: 0, details: [{ type_url: 'type.googleapis.com/google.protobuf.Empty', value: Buffer.alloc(0) }] } }, true);
    same({ ok_response: { headers: [{ header: { key: 'k', raw_value: Buffer.from('v') } }] } }, true);
    same({ dynamic_metadata: { fields: { x: { numberValue: '12' } } } }, true);
    same({ status: { code: '7' } }, true);
  });

  it('answers the same for metadata built at random', () => {
    let seed = 7;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const value = (depth: number): unknown => {
      switch (rnd(depth > 3 ? 4 : 6)) {
        case 0:
          return null;
        case 1:
          return rnd(2) === 0;
        case 2:
          return (rnd(2000) - 1000) / 7;
        case 3:
          return 'é✓'.repeat(rnd(40));
        case 4:
          return Array.from({ length: rnd(4) }, () => value(depth + 1));
        default:
          return Object.fromEntries(Array.from({ length: rnd(4) }, (_, i) => [`k${i}${'z'.repeat(rnd(50))}`, value(depth + 1)]));
      }
    };
    for (let i = 0; i < 200; i++) {
      const meta = { m: value(0) } as Record<string, unknown>;
      same(toCheckResponse({ allowed: true, route: 'r', upstreamHeaders: {}, removeHeaders: [], policy: toPolicyDecision({ allowed: true, dynamic_metadata: meta }) }));
    }
  });
});
