// The admin API under hostile input, on a real service: revoking by a whole API key, oversized
// bodies, bad escapes and times. Every refusal is a clear 4xx with an audit record; no secret
// reaches the log.
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestApiKey, generateApiKey } from '../../src/authn/apikey-format.js';
import { MAX_TTL_S } from '../../src/server/admin.js';
import { send, type Reply } from '../helpers/client.js';
import { authzClient, type AuthzClient } from '../helpers/grpc.js';
import { checkRequest } from '../helpers/requests.js';
import { configYaml, startInProcess } from '../helpers/service.js';
import { tempDir } from '../helpers/tmp.js';

const ADMIN_TOKEN = 'admin-token-for-admin-tests-0123456789';

describe('admin API under hostile input', () => {
  const tmp = tempDir();
  const victim = generateApiKey('eak');
  const other = generateApiKey('eak');
  let svc: Awaited<ReturnType<typeof startInProcess>>;
  let authz: AuthzClient;

  beforeAll(async () => {
    const expires = new Date(Date.now() + 86400_000).toISOString();
    tmp.write('apikeys.json', { keys: [victim, other].map((k, i) => ({ id: k.id, digest: digestApiKey(k.key), owner: `svc-${i}`, expires_at: expires })) });
    svc = await startInProcess(
      tmp.write(
        'authz.yaml',
        configYaml({
          server: { address: '127.0.0.1:0' },
          authentication: { api_keys: { file: 'apikeys.json' } },
          admin: { address: '127.0.0.1:0', tokens: [{ name: 'ops', sha256: createHash('sha256').update(ADMIN_TOKEN).digest('hex') }] },
        }),
      ),
    );
    authz = authzClient(svc.address);
  });

  afterAll(async () => {
    authz?.close();
    await svc?.shutdown();
  });

  const admin = (method: string, path: string, body?: unknown): Promise<Reply> =>
    send(`http://${svc.adminAddress}${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
  const allowed = async (apiKey: string): Promise<boolean> => (await authz.check(checkRequest({ headers: { 'x-api-key': apiKey } }))).status?.code === 0;
  const adminRecords = (): Record<string, unknown>[] => svc.logs.lines().filter((l) => l.event === 'admin');
  const secretOf = (key: string): string => key.split('_')[2]!;

  it('shows the configuration in the started record (modes are booleans, not censored)', () => {
    expect(svc.logs.lines().find((l) => l.event === 'started')).toMatchObject({ token: false, authorization: true, tls: false, revocation: 'memory (lost on restart)' });
  });

  it('revokes an API key given whole by its id, and never stores or logs the secret (nor one pasted into the reason)', async () => {
    expect(await allowed(victim.key)).toBe(true);
    const r = await admin('POST', '/v1/revocations', { kind: 'api_key', value: victim.key, reason: `leaked: ${victim.key}` });
    expect(r.status).toBe(201);
    expect(JSON.parse(r.body)).toMatchObject({ kind: 'api_key', value: victim.id });
    expect(await allowed(victim.key)).toBe(false);
    expect(await allowed(other.key)).toBe(true);
    const list = (await admin('GET', '/v1/revocations')).body;
    expect(list).toContain(victim.id);
    expect(list).not.toContain(secretOf(victim.key));
    expect(list).toContain(`leaked: eak_${victim.id}_[REDACTED]`);
    // Removing by the whole key (in the path) works too, and the path is masked in the audit.
    expect((await admin('DELETE', `/v1/revocations/api_key/${victim.key}`)).status).toBe(204);
    expect(await allowed(victim.key)).toBe(true);
    expect(adminRecords()).toContainEqual(expect.objectContaining({ action: 'add', kind: 'api_key', value: victim.id, result: 'ok' }));
    expect(adminRecords()).toContainEqual(expect.objectContaining({ action: 'remove', kind: 'api_key', value: victim.id, result: 'ok', path: `/v1/revocations/api_key/eak_${victim.id}_[REDACTED]` }));
    expect(svc.logs.text()).not.toContain(secretOf(victim.key));
  });

  it('refuses a key-shaped value with a bad checksum or any other non-id, without echoing it', async () => {
    const typo = `${victim.key.slice(0, -1)}${victim.key.endsWith('A') ? 'B' : 'A'}`;
    for (const value of [typo, 'not-an-id', 'x'.repeat(13)]) {
      const r = await admin('POST', '/v1/revocations', { kind: 'api_key', value });
      expect(r.status, value).toBe(400);
      expect(r.body).not.toContain(value);
    }
    expect(svc.logs.text()).not.toContain(secretOf(victim.key));
  });

  it('audits a failed add with the fields of a successful one (kind, value masked alike) and the reason', async () => {
    const past = new Date(Date.now() - 60_000).toISOString();
    expect((await admin('POST', '/v1/revocations', { kind: 'subject', value: 'mallory', expires_at: past })).status).toBe(400);
    expect(adminRecords().at(-1)).toMatchObject({ actor: 'ops', action: 'add', kind: 'subject', value: 'mallory', result: 'error', status: 400, error: 'expires_at is in the past' });
    // A whole API key is logged as its id, as on success; a key-shaped value that is no valid key is masked by shape.
    expect((await admin('POST', '/v1/revocations', { kind: 'api_key', value: victim.key, ttl_s: -1 })).status).toBe(400);
    expect(adminRecords().at(-1)).toMatchObject({ action: 'add', kind: 'api_key', value: victim.id, result: 'error', status: 400 });
    const typo = `${victim.key.slice(0, -1)}${victim.key.endsWith('A') ? 'B' : 'A'}`;
    expect((await admin('POST', '/v1/revocations', { kind: 'api_key', value: typo })).status).toBe(400);
    expect(adminRecords().at(-1)).toMatchObject({ action: 'add', kind: 'api_key', value: `eak_${victim.id}_[REDACTED]`, result: 'error', error: expect.stringContaining('API key id') as unknown });
    expect(svc.logs.text()).not.toContain(secretOf(victim.key).slice(0, -1));
    // An unknown kind: logged as sent (bounded by the logger), with the reason.
    expect((await admin('POST', '/v1/revocations', { kind: 'nope', value: 'v' })).status).toBe(400);
    expect(adminRecords().at(-1)).toMatchObject({ action: 'add', kind: 'nope', value: 'v', result: 'error', error: expect.stringContaining('kind must be one of') as unknown });
    // A failed remove names its kind and value too.
    expect((await admin('DELETE', '/v1/revocations/subject/%E0%A4%A')).status).toBe(400);
    expect(adminRecords().at(-1)).toMatchObject({ action: 'remove', kind: 'subject', result: 'error', status: 400 });
    // Nothing else in the record is a leftover "POST" or "DELETE" as the action.
    expect(adminRecords().filter((r) => r.action === 'POST' || r.action === 'DELETE')).toEqual([]);
  });

  it('answers an oversized body with 413 and audits it', async () => {
    const before = adminRecords().length;
    const big = JSON.stringify({ kind: 'subject', value: 'x', reason: 'y'.repeat(100_000) });
    expect((await admin('POST', '/v1/revocations', big)).status).toBe(413);
    // Without a content-length (chunked), the cap is enforced as bytes arrive.
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = request(`http://${svc.adminAddress}/v1/revocations`, { method: 'POST', agent: false, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.once('error', reject);
      for (let i = 0; i < 10; i++) req.write('z'.repeat(4096));
      req.end();
    });
    expect(chunked).toBe(413);
    const records = adminRecords().slice(before);
    expect(records).toHaveLength(2);
    for (const rec of records) expect(rec).toMatchObject({ actor: 'ops', result: 'error', status: 413, source: '127.0.0.1', method: 'POST', path: '/v1/revocations' });
    expect(svc.logs.lines().filter((l) => l.event === 'admin_error')).toEqual([]);
    // The listener still answers.
    expect((await admin('GET', '/v1/revocations')).status).toBe(200);
  });

  it('answers a bad percent-escape in DELETE with 400', async () => {
    const r = await admin('DELETE', '/v1/revocations/subject/%E0%A4%A');
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body)).toMatchObject({ error: 'bad_request' });
    expect(adminRecords().at(-1)).toMatchObject({ result: 'error', status: 400 });
  });

  it('takes expires_at only as a strict RFC 3339 date-time in the future, and ttl_s up to a bound', async () => {
    const soon = new Date(Date.now() + 3600_000).toISOString();
    const ok = await admin('POST', '/v1/revocations', { kind: 'subject', value: 'until-soon', expires_at: soon });
    expect(ok.status).toBe(201);
    expect((JSON.parse(ok.body) as { expiresAt: number }).expiresAt).toBe(Math.floor(Date.parse(soon) / 1000));
    for (const expires_at of ['1', '2026', '2030-01-01', '2030-01-01T00:00:00', 'tomorrow', 1893456000, new Date(Date.now() - 60_000).toISOString(), new Date(Date.now() + (MAX_TTL_S + 3600) * 1000).toISOString()]) {
      expect((await admin('POST', '/v1/revocations', { kind: 'subject', value: 'u', expires_at })).status, String(expires_at)).toBe(400);
    }
    for (const ttl_s of [1e300, MAX_TTL_S + 1, 0, -5, 1.5, '60']) {
      expect((await admin('POST', '/v1/revocations', { kind: 'subject', value: 'u', ttl_s })).status, String(ttl_s)).toBe(400);
    }
    expect((await admin('POST', '/v1/revocations', { kind: 'subject', value: 'for-a-year', ttl_s: MAX_TTL_S })).status).toBe(201);
    const values = (JSON.parse((await admin('GET', '/v1/revocations')).body) as { entries: { value: string }[] }).entries.map((e) => e.value);
    expect(values).not.toContain('u');
  });
});
