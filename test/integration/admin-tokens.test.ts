// admin.tokens_file: more admin tokens from a file (a mounted Secret), beside the inline ones.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { send } from '../helpers/client.js';
import { configYaml, runService, startInProcess } from '../helpers/service.js';
import { tempDir } from '../helpers/tmp.js';

const sha = (t: string): string => createHash('sha256').update(t).digest('hex');

describe('admin.tokens_file', () => {
  const tmp = tempDir();

  it('adds its tokens to the inline ones; any other token is refused', async () => {
    tmp.write('admin-tokens.yaml', `- name: from-file\n  sha256: ${sha('file-token-0123456789abcdef')}\n`);
    const file = tmp.write(
      'authz.yaml',
      configYaml({ admin: { address: '127.0.0.1:0', tokens: [{ name: 'inline', sha256: sha('inline-token-0123456789abcdef') }], tokens_file: 'admin-tokens.yaml' } }),
    );
    const svc = await startInProcess(file);
    try {
      const list = (token: string): Promise<number> =>
        send(`http://${svc.adminAddress}/v1/revocations`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);
      expect(await list('file-token-0123456789abcdef')).toBe(200);
      expect(await list('inline-token-0123456789abcdef')).toBe(200);
      expect(await list('some-other-token-0123456789')).toBe(401);
    } finally {
      await svc.shutdown();
    }
  });

  it('refuses a file that is not a list of {name, sha256}, naming the file and the problem', async () => {
    tmp.write('bad-tokens.yaml', '- name: x\n  sha256: not-a-digest\n');
    const file = tmp.write('bad.yaml', configYaml({ admin: { tokens_file: 'bad-tokens.yaml' } }));
    for (const args of [['--config', file, '--check-config'], ['--config', file]]) {
      const r = await runService(args);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`${file}: /admin/tokens_file: ${tmp.dir}/bad-tokens.yaml: /0/sha256: must match pattern`);
    }
  }, 60_000);
});
