// Token signing key rotation you can see (docs/operations.md "Rotating the token signing key"): a
// real process logs the keys with their activation times, logs a key taking over when its
// activate_at passes, exports the signing kid as a metric, and picks up a new key file without a
// restart.
import { exportJWK } from 'jose';
import { describe, expect, it } from 'vitest';
import { makeKey } from '../helpers/keys.js';
import { configYaml, spawnService } from '../helpers/service.js';
import { tempDir } from '../helpers/tmp.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('token signing key rotation', () => {
  const tmp = tempDir();

  async function writeKey(file: string, kid: string): Promise<void> {
    const k = await makeKey('ES256', kid);
    tmp.write(file, { ...(await exportJWK(k.privateKey)), kid, alg: 'ES256' });
  }

  const config = (keys: { file: string; activate_at?: string }[]): string =>
    tmp.write(
      'authz.yaml',
      configYaml({
        server: { address: '127.0.0.1:0' },
        token: { default_audience: 'api', signing_keys: keys },
        reload: { debounce_ms: 50 },
      }),
    );

  it('logs activation times, a key taking over and retiring, exports the signing kid, and picks up new key files without a restart', async () => {
    await writeKey('k1.jwk', 'k1');
    const svc = await spawnService(['--config', config([{ file: 'k1.jwk' }])]);
    const admin = svc.lines.find((l) => l.event === 'started')!.admin as string;
    const events = (name: string): Record<string, unknown>[] => svc.lines.filter((l) => l.event === name);
    const metrics = async (): Promise<string> => (await fetch(`http://${admin}/metrics`)).text();
    const kids = async (): Promise<string[]> => ((await (await fetch(`http://${admin}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid);
    try {
      expect(events('signing_keys')[0]).toMatchObject({ signing_kid: 'k1', keys: [{ kid: 'k1', alg: 'ES256', activate_at: null, state: 'signing' }] });
      expect(await metrics()).toMatch(/^envoy_authz_signing_key_info\{kid="k1"\} 1$/m);

      // A successor, published now, signing in three seconds.
      await writeKey('k2.jwk', 'k2');
      const at = new Date(Math.ceil((Date.now() + 3000) / 1000) * 1000).toISOString();
      config([{ file: 'k1.jwk' }, { file: 'k2.jwk', activate_at: at }]);
      await until('the reload', () => events('config_reloaded').length === 1);
      expect(events('signing_key_added')).toEqual([expect.objectContaining({ kid: 'k2', activate_at: at, state: 'pending' })]);
      expect(await kids()).toEqual(['k1', 'k2']);
      expect(await metrics()).toMatch(/^envoy_authz_signing_key_info\{kid="k1"\} 1$/m);

      // Its time comes: logged as it happens, and the metric follows.
      // Two lines written one after the other: the second may arrive in a later read of the pipe.
      await until('the activation and the retirement', () => events('signing_key_activated').length === 1 && events('signing_key_retired').length === 1);
      expect(events('signing_key_activated')[0]).toMatchObject({ kid: 'k2', activate_at: at, previous_kid: 'k1', cause: 'activate_at' });
      expect(events('signing_key_retired')[0]).toMatchObject({ kid: 'k1', successor_kid: 'k2' });
      expect(Date.parse(svc.lines.find((l) => l.event === 'signing_key_activated')!.time as string)).toBeGreaterThanOrEqual(Date.parse(at));
      const text = await metrics();
      expect(text).toMatch(/^envoy_authz_signing_key_info\{kid="k2"\} 1$/m);
      expect(text).toMatch(/^envoy_authz_signing_key_info\{kid="k1"\} 0$/m);

      // The old key's file is replaced by a new key (config unchanged): the watcher reloads it.
      await writeKey('k1.jwk', 'k3');
      await until('the key file reload', () => events('config_reloaded').length === 2);
      expect(events('signing_key_added').at(-1)).toMatchObject({ kid: 'k3', state: 'published' });
      expect(events('signing_key_removed')).toEqual([expect.objectContaining({ kid: 'k1', level: 'warn' })]);
      expect(await kids()).toEqual(['k3', 'k2']);
    } finally {
      expect(await svc.stop()).toBe(0);
    }
  });
});
