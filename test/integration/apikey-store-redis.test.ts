// The Redis API key store against a real redis-server: an entry Redis has to be asked for comes
// later (a promise); once cached - found or not - it comes back at once, so a Check with a known
// key makes no promise for it; Redis being away is an UnavailableError, never "unknown key".
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestApiKey, generateApiKey } from '../../src/authn/apikey-format.js';
import { RedisApiKeyStore } from '../../src/authn/apikey-store.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

describe('RedisApiKeyStore', () => {
  let redis: TestRedis;
  const k = generateApiKey('eak');

  beforeAll(async () => {
    redis = await startRedis();
    await redis.client.hset('t:apikeys', k.id, JSON.stringify({ id: k.id, digest: digestApiKey(k.key), owner: 'svc-batch', expires_at: new Date(Date.now() + 86400_000).toISOString() }));
  });
  afterAll(async () => {
    await redis.stop();
  });

  it('asks Redis once per id, then answers from its cache at once (found or not)', async () => {
    const store = new RedisApiKeyStore(redis.client, 't:apikeys');
    const first = store.get(k.id);
    expect(first).toBeInstanceOf(Promise);
    expect(await first).toMatchObject({ id: k.id, owner: 'svc-batch' });
    const again = store.get(k.id);
    expect(again).not.toBeInstanceOf(Promise);
    expect(again).toMatchObject({ id: k.id, owner: 'svc-batch' });

    const missing = store.get('AAAAAAAAAAAA');
    expect(missing).toBeInstanceOf(Promise);
    expect(await missing).toBeUndefined();
    expect(store.get('AAAAAAAAAAAA')).toBeUndefined();
  });

  it('fails as unavailable, by rejecting, when Redis cannot answer', async () => {
    const down = await startRedis();
    const store = new RedisApiKeyStore(down.client, 't:apikeys');
    await down.stop();
    const r = store.get(k.id);
    expect(r).toBeInstanceOf(Promise);
    await expect(r).rejects.toMatchObject({ code: 'store_unavailable' });
  });
});
