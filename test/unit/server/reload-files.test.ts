// The files a config reload watches: every file the config names that a reload would read anew.
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/loader.js';
import { referencedFiles } from '../../../src/server/reload.js';

describe('referencedFiles', () => {
  it('names the policy descriptor set, the OpenAPI documents and the decision-log token file', () => {
    const config = parseConfig(
      'authz.yaml',
      JSON.stringify({
        policy: { bundle: { file: 'b.tar.gz' }, proto_descriptor: 'orders.pb' },
        openapi: { specs: [{ name: 'a', file: 'specs/a.yaml' }, { name: 'b', url: 'https://specs.example/b.yaml' }] },
        decision_logs: { service: { url: 'https://logs.example', token_file: 'logs.token' } },
      }),
    );
    const files = referencedFiles({ file: '/etc/authz/authz.yaml', dir: '/etc/authz', config });
    expect(files).toEqual(expect.arrayContaining(['/etc/authz/orders.pb', '/etc/authz/specs/a.yaml', '/etc/authz/logs.token']));
    expect(files.some((f) => f.includes('specs.example'))).toBe(false);
  });
});
