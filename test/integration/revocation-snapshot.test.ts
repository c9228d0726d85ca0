// revocation.snapshot_file: a memory deny list that survives a restart.
import { createHash } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { send } from '../helpers/client.js';
import { authzClient } from '../helpers/grpc.js';
import { jwks, makeKey, signToken, jwksFileIssuer } from '../helpers/keys.js';
import { checkRequest } from '../helpers/requests.js';
import { configYaml, runService, startInProcess } from '../helpers/service.js';
import { tempDir } from '../helpers/tmp.js';

const ADMIN_TOKEN = 'snapshot-admin-token-0123456789abcdef';

describe('revocation.snapshot_file', () => {
  const tmp = tempDir();

  it('keeps a revocation across a restart', async () => {
    const key = await makeKey();
    tmp.write('jwks.json', jwks(key));
    const file = tmp.write(
      'authz.yaml',
      configYaml({
        server: { address: '127.0.0.1:0' },
        authentication: { jwt: { issuers: [jwksFileIssuer()] } },
        admin: { address: '127.0.0.1:0', tokens: [{ name: 'ops', sha256: createHash('sha256').update(ADMIN_TOKEN).digest('hex') }] },
        revocation: { store: 'memory', snapshot_file: 'revocations.json' },
      }),
    );
    const token = await signToken(key, { sub: 'mallory' });
    const allowed = async (svc: { address: string }): Promise<boolean> => {
      const c = authzClient(svc.address);
      try {
        return (await c.check(checkRequest({ headers: { authorization: `Bearer ${token}` } }))).status?.code === 0;
      } finally {
        c.close();
      }
    };

    const first = await startInProcess(file);
    expect(await allowed(first)).toBe(true);
    const added = await send(`http://${first.adminAddress}/v1/revocations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'subject', value: 'mallory', ttl_s: 3600, reason: 'test' }),
    });
    expect(added.status).toBe(201);
    expect(await allowed(first)).toBe(false);
    await first.shutdown();

    // Written before the admin API answered, readable by its owner only.
    const snapshot = `${tmp.dir}/revocations.json`;
    expect(JSON.parse(readFileSync(snapshot, 'utf8'))).toMatchObject({ version: 1, entries: [{ kind: 'subject', value: 'mallory' }] });
    expect(statSync(snapshot).mode & 0o077).toBe(0);

    const second = await startInProcess(file);
    try {
      expect(await allowed(second)).toBe(false);
    } finally {
      await second.shutdown();
    }
  });

  it('refuses to start (and --check-config refuses) when the snapshot is corrupt, rather than forget revocations', async () => {
    writeFileSync(`${tmp.dir}/corrupt.json`, '{"version":1,"entries":[');
    const file = tmp.write('corrupt.yaml', configYaml({ revocation: { snapshot_file: 'corrupt.json' } }));
    for (const args of [['--config', file, '--check-config'], ['--config', file]]) {
      const r = await runService(args);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`revocation.snapshot_file ${tmp.dir}/corrupt.json: not valid JSON`);
    }
  }, 60_000);
});
