// /metrics on the admin listener: valid Prometheus text, and the counters move as requests are
// allowed, denied, fail, and are rate limited. No label carries a subject or a token.
import { beforeAll, describe, expect, it } from 'vitest';
import { SLOW_ISSUER, startObservedService, type ObservedService } from '../helpers/observed.js';
import { send } from '../helpers/client.js';
import { authzClient, type AuthzClient, type RlsClient } from '../helpers/grpc.js';
import { AUDIENCE, ISSUER, jwks, makeKey, signToken, type TestKey } from '../helpers/keys.js';
import { checkRequest } from '../helpers/requests.js';
import { configYaml, startInProcess } from '../helpers/service.js';
import { tempDir } from '../helpers/tmp.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text exposition format strictly enough to reject malformed output. */
function parsePrometheus(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ') || line.startsWith('# UNIT ')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (-?[0-9.e+]+|\+Inf|NaN)( \d+)?$/.exec(line);
    if (!m) throw new Error(`not Prometheus text: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[4]) });
  }
  return samples;
}

describe('/metrics', () => {
  const tmp = tempDir();
  let key: TestKey;
  let svc: ObservedService['svc'];
  let authz: AuthzClient;
  let rls: RlsClient;

  beforeAll(async () => {
    ({ key, svc, authz, rls } = await startObservedService(tmp, 'domain: m\ndescriptors:\n  - key: user\n    rate_limit: {unit: minute, requests_per_unit: 2}\n'));
  });

  const scrape = async (): Promise<Sample[]> => {
    const r = await send(`http://${svc.adminAddress}/metrics`);
    expect(r.status).toBe(200);
    return parsePrometheus(r.body);
  };
  const value = (samples: Sample[], name: string, labels: Record<string, string>): number =>
    samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);

  it('counts decisions by outcome and reason, errors by code, and rate-limit outcomes', async () => {
    const token = await signToken(key, { sub: 'secret-subject-name' });
    await authz.check(checkRequest({ headers: { authorization: `Bearer ${token}` } }));
    await authz.check(checkRequest({ headers: { authorization: `Bearer ${token}` } }));
    await authz.check(checkRequest());
    await authz.check(checkRequest({ headers: { authorization: `Bearer ${await signToken(key, { iss: SLOW_ISSUER })}` } })).catch(() => undefined);
    for (let i = 0; i < 3; i++) await rls.shouldRateLimit('m', [[['user', 'descriptor-value-u1']]]);
    await rls.shouldRateLimit('not-configured', [[['user', 'u1']]]);

    const s = await scrape();
    expect(value(s, 'envoy_authz_decisions_total', { outcome: 'allowed', reason: 'ok', route: 'default' })).toBe(2);
    expect(value(s, 'envoy_authz_decisions_total', { outcome: 'denied', reason: 'credential_missing' })).toBe(1);
    expect(value(s, 'envoy_authz_check_errors_total', { code: 'deadline_exceeded' })).toBe(1);
    expect(value(s, 'envoy_authz_check_duration_seconds_count', { outcome: 'allowed' })).toBe(2);
    expect(value(s, 'envoy_authz_ratelimit_checks_total', { domain: 'm', outcome: 'over' })).toBe(1);
    expect(value(s, 'envoy_authz_ratelimit_checks_total', { domain: 'm' })).toBe(3);
    // The limit, by its descriptor path in the file (it has no name), never by the descriptor's value.
    expect(value(s, 'envoy_authz_ratelimit_checks_total', { domain: 'm', limit: 'user', outcome: 'over' })).toBe(1);
    expect(value(s, 'envoy_authz_ratelimit_duration_seconds_count', {})).toBe(4);
    // Timed where a credential was tried: the two tokens (the slow issuer's may still be running; the request without one tries none).
    expect(value(s, 'envoy_authz_stage_duration_seconds_count', { stage: 'authenticate' })).toBeGreaterThanOrEqual(2);
    expect(value(s, 'envoy_authz_stage_duration_seconds_count', { stage: 'ratelimit.store' })).toBe(4);

    // Counters move.
    await authz.check(checkRequest());
    expect(value(await scrape(), 'envoy_authz_decisions_total', { outcome: 'denied', reason: 'credential_missing' })).toBe(2);
  });

  it('keeps label values bounded: no subject, token or unknown domain', async () => {
    const r = await send(`http://${svc.adminAddress}/metrics`);
    expect(r.body).not.toContain('secret-subject-name');
    expect(r.body).not.toContain('not-configured');
    expect(r.body).not.toContain('descriptor-value-u1');
    expect(r.body).not.toContain('eyJ');
  });
});

describe('cache and outbound-call metrics', () => {
  const tmp = tempDir();

  it('counts JWKS fetches and minted-token cache hits', async () => {
    const { loopbackServer: serve, sendJson } = await import('../helpers/http.js');
    const { ensureDevSigningKey } = await import('../../src/dev/local-secrets.js');
    const key = await makeKey();
    const host = await serve((_req, res) => sendJson(res, jwks(key)));
    await ensureDevSigningKey(tmp.dir);
    const svc = await startInProcess(
      tmp.write(
        'authz.yaml',
        configYaml({
          server: { address: '127.0.0.1:0' },
          authentication: { jwt: { issuers: [{ issuer: ISSUER, audiences: [AUDIENCE], jwks: { url: `${host.url}/jwks`, allow_insecure_http: true } }] } },
          token: { default_audience: 'api', signing_keys: [{ file: 'token-signing.jwk' }] },
        }),
      ),
    );
    const client = authzClient(svc.address);
    try {
      const token = await signToken(key, { sub: 'bob' });
      for (let i = 0; i < 3; i++) await client.check(checkRequest({ headers: { authorization: `Bearer ${token}` } }));
      const text = (await send(`http://${svc.adminAddress}/metrics`)).body;
      expect(text).toMatch(/envoy_authz_outbound_calls_total\{target="jwks",outcome="ok"\} 1/);
      expect(text).toMatch(/envoy_authz_cache_lookups_total\{cache="minted_token",result="miss"\} 1/);
      expect(text).toMatch(/envoy_authz_cache_lookups_total\{cache="minted_token",result="hit"\} 2/);
    } finally {
      client.close();
      await svc.shutdown();
    }
  });
});
