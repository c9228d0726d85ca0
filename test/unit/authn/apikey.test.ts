import { describe, expect, it } from 'vitest';
import type { Maybe } from '../../../src/lib/maybe.js';
import { assembleApiKey, digestApiKey, generateApiKey, parseApiKey } from '../../../src/authn/apikey-format.js';
import { ApiKeyAuthenticator } from '../../../src/authn/apikey.js';
import { FileApiKeyStore, compileEntry, readApiKeyFile, type ApiKeyRecord, type ApiKeyStore } from '../../../src/authn/apikey-store.js';
import { ConfigError } from '../../../src/lib/errors.js';
import type { ApiKeyEntryConfig } from '../../../src/config/schema.js';
import { requestView, type ReqOptions } from '../../helpers/requests.js';
import { tempDir } from '../../helpers/tmp.js';
import { longestStopRetried } from '../../helpers/event-loop.js';

/** The refusal's code (a failure is always a rejection); undefined when it answered, at once or later. */
const code = async (p: Maybe<unknown>): Promise<string | undefined> =>
  Promise.resolve(p).then(
    () => undefined,
    (e: unknown) => (e as { code?: string }).code,
  );

/** A store that answers later (as Redis on a cache miss), or `atOnce` (a key file, a cached entry). */
function store(...entries: ApiKeyEntryConfig[]): ApiKeyStore {
  const map = new Map(entries.map((e) => [e.id, compileEntry(e) as ApiKeyRecord]));
  return { get: (id) => Promise.resolve(map.get(id)) };
}

function atOnce(...entries: ApiKeyEntryConfig[]): ApiKeyStore {
  const map = new Map(entries.map((e) => [e.id, compileEntry(e) as ApiKeyRecord]));
  return { get: (id) => map.get(id) };
}

function entryFor(key: string, id: string, over: Partial<ApiKeyEntryConfig> = {}): ApiKeyEntryConfig {
  return { id, digest: digestApiKey(key), owner: 'svc-orders', expires_at: new Date(Date.now() + 86400_000).toISOString(), ...over };
}

const req = (key: string | undefined, o: ReqOptions = {}) => requestView({ ...o, headers: { ...(key ? { 'x-api-key': key } : {}), ...o.headers } });

describe('API key format', () => {
  it('generates keys that parse, with prefix, id and checksum', () => {
    const { key, id } = generateApiKey('eak');
    expect(key).toMatch(/^eak_[A-Za-z0-9]{12}_[A-Za-z0-9]{32}_[A-Za-z0-9]{6}$/);
    expect(parseApiKey(key, 'eak')).toEqual({ prefix: 'eak', id });
  });

  it('rejects a wrong prefix, a wrong checksum, a typo and junk before any lookup', () => {
    const { key } = generateApiKey('eak');
    expect(parseApiKey(key, 'xyz')).toBeUndefined();
    const typo = `${key.slice(0, 20)}${key[20] === 'a' ? 'b' : 'a'}${key.slice(21)}`;
    expect(parseApiKey(typo, 'eak')).toBeUndefined();
    expect(parseApiKey(`${key.slice(0, -6)}AAAAAA`, 'eak')).toBeUndefined();
    expect(parseApiKey('eak_short', 'eak')).toBeUndefined();
    expect(parseApiKey(`${key}x`, 'eak')).toBeUndefined();
  });

  it('digests with sha256 or HMAC-SHA256, never storing the key', () => {
    const { key } = generateApiKey('eak');
    expect(digestApiKey(key)).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(digestApiKey(key, new Uint8Array(32))).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);
    expect(digestApiKey(key)).not.toContain(key);
  });
});

describe('ApiKeyAuthenticator', () => {
  const { key, id } = generateApiKey('eak');
  const opts = { header: 'x-api-key', prefix: 'eak' };

  it('authenticates a key as its owner (a workload and service account)', async () => {
    const a = new ApiKeyAuthenticator(opts, [store(entryFor(key, id, { scopes: ['orders:read'] }))]);
    expect(await a.authenticate(req(key))).toMatchObject({ kind: 'workload', method: 'api_key', id: 'svc-orders', serviceAccount: 'svc-orders', keyId: id, scopes: ['orders:read'] });
    expect(await a.authenticate(req(undefined))).toBeUndefined();
  });

  it('answers at once from stores that answer at once, later from one that waits, and refuses by rejecting either way', async () => {
    const other = generateApiKey('eak');
    const memory = new ApiKeyAuthenticator(opts, [atOnce(entryFor(key, id))]);
    const hit = memory.authenticate(req(key));
    expect(hit).not.toBeInstanceOf(Promise);
    expect(hit).toMatchObject({ id: 'svc-orders', keyId: id });
    expect(memory.authenticate(req(undefined))).toBeUndefined();
    for (const refused of [memory.authenticate(req(other.key)), memory.authenticate(req('eak_junk'))]) {
      expect(refused).toBeInstanceOf(Promise);
      expect(await code(refused)).toMatch(/api_key_invalid|credential_malformed/);
    }
    // The first store has no entry and waits; the second has it at once: found, later.
    const mixed = new ApiKeyAuthenticator(opts, [store(), atOnce(entryFor(key, id))]);
    const later = mixed.authenticate(req(key));
    expect(later).toBeInstanceOf(Promise);
    await expect(later).resolves.toMatchObject({ keyId: id });
    // The other way round: the first (at once) has no entry, the second waits and has it.
    await expect(new ApiKeyAuthenticator(opts, [atOnce(), store(entryFor(key, id))]).authenticate(req(key))).resolves.toMatchObject({ keyId: id });
  });

  it('rejects malformed, unknown, wrong-secret, disabled and expired keys', async () => {
    const other = generateApiKey('eak');
    const sameId = generateApiKey('eak');
    const a = new ApiKeyAuthenticator(opts, [store(entryFor(key, id), entryFor(sameId.key, other.id, { digest: digestApiKey(other.key) }))]);
    expect(await code(a.authenticate(req('eak_not_a_key')))).toBe('credential_malformed');
    expect(await code(a.authenticate(req(generateApiKey('eak').key)))).toBe('api_key_invalid');
    // Right id, well-formed, wrong secret.
    const forged = assembleApiKey('eak', id, 'x'.repeat(32));
    expect(await code(a.authenticate(req(forged)))).toBe('api_key_invalid');
    const d = new ApiKeyAuthenticator(opts, [store(entryFor(key, id, { disabled: true }))]);
    expect(await code(d.authenticate(req(key)))).toBe('credential_revoked');
    const e = new ApiKeyAuthenticator(opts, [store(entryFor(key, id, { expires_at: '2020-01-01T00:00:00Z' }))]);
    expect(await code(e.authenticate(req(key)))).toBe('token_expired');
  });

  it('enforces host, path, method and source CIDR restrictions (V-274556)', async () => {
    const a = new ApiKeyAuthenticator(opts, [
      store(entryFor(key, id, { restrictions: { hosts: ['api.example.test'], paths: ['/orders'], methods: ['GET'], source_cidrs: ['127.0.0.0/8', '2001:db8::/32'] } })),
    ]);
    const ok = { host: 'api.example.test', path: '/orders/1', method: 'GET' };
    expect(await a.authenticate(req(key, ok))).toBeDefined();
    expect(await code(a.authenticate(req(key, { ...ok, host: 'other.test' })))).toBe('credential_restricted');
    expect(await code(a.authenticate(req(key, { ...ok, path: '/ordersX' })))).toBe('credential_restricted');
    expect(await code(a.authenticate(req(key, { ...ok, method: 'DELETE' })))).toBe('credential_restricted');
    const fromElsewhere = { ...req(key, ok), source: { address: '192.0.2.7' } };
    expect(await code(a.authenticate(fromElsewhere))).toBe('credential_restricted');
    expect(await a.authenticate({ ...req(key, ok), source: { address: '2001:db8::1' } })).toBeDefined();
  });

  it('verifies HMAC digests with the server secret', async () => {
    const secret = new Uint8Array(Buffer.from('s'.repeat(32)));
    const a = new ApiKeyAuthenticator({ ...opts, hmacSecret: secret }, [store(entryFor(key, id, { digest: digestApiKey(key, secret) }))]);
    expect(await a.authenticate(req(key))).toBeDefined();
    const wrong = new ApiKeyAuthenticator({ ...opts, hmacSecret: new Uint8Array(32) }, [store(entryFor(key, id, { digest: digestApiKey(key, secret) }))]);
    expect(await code(wrong.authenticate(req(key)))).toBe('api_key_invalid');
  });
});

describe('FileApiKeyStore', () => {
  const tmp = tempDir();
  it('loads entries and names the problem of a bad file', async () => {
    const { key, id } = generateApiKey('eak');
    tmp.write('keys.yaml', `keys:\n  - ${JSON.stringify(entryFor(key, id))}\n`);
    const s = await FileApiKeyStore.load({ file: 'c.yaml', dir: tmp.dir }, 'keys.yaml');
    expect(s.size).toBe(1);
    expect(s.get(id)?.owner).toBe('svc-orders'); // in memory: at once, no promise
    tmp.write('bad.yaml', `keys:\n  - {id: short, digest: x}\n`);
    await expect(FileApiKeyStore.load({ file: 'c.yaml', dir: tmp.dir }, 'bad.yaml')).rejects.toMatchObject({
      code: 'config_invalid',
      problems: [{ keyPath: '/authentication/api_keys/file' }],
    });
    tmp.write('cidr.yaml', `keys:\n  - ${JSON.stringify(entryFor(key, id, { restrictions: { source_cidrs: ['10.0.0.0/99'] } }))}\n`);
    await expect(FileApiKeyStore.load({ file: 'c.yaml', dir: tmp.dir }, 'cidr.yaml')).rejects.toThrow(/invalid CIDR/);
  });

  it('reads JSON files natively and YAML flow mappings that start like JSON', async () => {
    const { key, id } = generateApiKey('eak');
    tmp.write('keys.json', JSON.stringify({ keys: [entryFor(key, id)] }));
    expect((await FileApiKeyStore.load({ file: 'c.yaml', dir: tmp.dir }, 'keys.json')).get(id)?.owner).toBe('svc-orders');
    tmp.write('flow.yaml', `{keys: [${JSON.stringify(entryFor(key, id))}]}\n`);
    expect((await FileApiKeyStore.load({ file: 'c.yaml', dir: tmp.dir }, 'flow.yaml')).size).toBe(1);
    tmp.write('broken.json', '{"keys": [');
    await expect(FileApiKeyStore.load({ file: 'c.yaml', dir: tmp.dir }, 'broken.json')).rejects.toThrow(/not valid YAML\/JSON/);
  });

  // A file over 32 KB is read in a worker thread and its records taken 1,000 per turn of the event
  // loop: in-thread, with 50,000 keys in the file a SIGHUP reload held the event loop 240-360 ms.
  const keySet = (n: number): ApiKeyEntryConfig[] =>
    Array.from({ length: n }, (_, i) => {
      const id = `k${String(i).padStart(11, '0')}`;
      const e = entryFor(assembleApiKey('eak', id, `s${String(i).padStart(31, '0')}`), id);
      return i % 1000 === 0 ? { ...e, scopes: ['a', 'b'], restrictions: { hosts: ['API.example.com'], paths: ['/v1/'], methods: ['GET'], source_cidrs: ['10.0.0.0/8', '2001:db8::/32'] } } : e;
    });

  it('gives the records a read in-thread gives, frozen, restrictions working', async () => {
    const path = tmp.write('set.json', JSON.stringify({ keys: keySet(2500) }));
    const store = await FileApiKeyStore.load({ file: 'c.yaml', dir: tmp.dir }, path);
    const inThread = await readApiKeyFile({ file: 'c.yaml', dir: tmp.dir }, path);
    expect(store.size).toBe(2500);
    for (const [id, rec] of inThread) {
      const got = store.get(id)!;
      expect(Object.isFrozen(got)).toBe(true);
      expect({ ...got, sources: undefined }).toEqual({ ...rec, sources: undefined });
      expect(got.sources?.check('10.1.2.3')).toBe(rec.sources?.check('10.1.2.3'));
    }
    const restricted = store.get('k00000001000')!;
    expect([restricted.hosts?.has('api.example.com'), restricted.methods?.has('GET'), restricted.paths]).toEqual([true, true, ['/v1']]);
    expect([restricted.sources?.check('10.9.9.9'), restricted.sources?.check('2001:db8::1', 'ipv6'), restricted.sources?.check('192.0.2.1')]).toEqual([true, true, false]);
  });

  // node's --max-old-space-size overrides a worker's own cap (nodejs/node#43991).
  it.skipIf(/--max-old-space-size/.test(`${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS ?? ''}`))('refuses a file that needs more heap than the worker may take', async () => {
    // Enough heap to start and load its modules, not to parse 100,000 keys (15 MB of JSON).
    const path = tmp.write('heap.json', JSON.stringify({ keys: keySet(100_000) }));
    const err = await FileApiKeyStore.load({ file: 'c.yaml', dir: tmp.dir }, path, 40).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems).toEqual([{ keyPath: '/authentication/api_keys/file', problem: `${path}: too large: reading it needs more than 40 MB (large key sets: use JSON)` }]);
    // The same cap lets the worker start and read a smaller file (over 32 KB: in the worker): the refusal was the parse's.
    expect((await FileApiKeyStore.load({ file: 'c.yaml', dir: tmp.dir }, tmp.write('heap-small.json', JSON.stringify({ keys: keySet(500) })), 40)).size).toBe(500);
  });

  it('keeps the event loop running while 100,000 keys load', async () => {
    const path = tmp.write('large.json', JSON.stringify({ keys: keySet(100_000) }));
    const { result: store, longestMs, tookMs } = await longestStopRetried(() => FileApiKeyStore.load({ file: 'c.yaml', dir: tmp.dir }, path), 150);
    expect(store.size).toBe(100_000);
    expect(longestMs, `longest event-loop gap ${longestMs.toFixed(0)} ms of a ${tookMs.toFixed(0)} ms load`).toBeLessThan(150);
  });
});
