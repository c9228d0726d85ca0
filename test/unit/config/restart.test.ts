// Which keys a reload cannot apply, and what it applies instead.
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/loader.js';
import { restartOnlyChanges, withRunningListeners } from '../../../src/config/restart.js';

const cfg = (yaml: string): ReturnType<typeof parseConfig> => parseConfig('t.yaml', yaml);

describe('restart-only keys', () => {
  const running = cfg('server: {address: "127.0.0.1:9191"}\nadmin: {address: "127.0.0.1:9192"}\npolicy: {bundle: {file: b.tar.gz}}\n');

  it('names each changed leaf under server, admin.address, logging, check.enabled and ratelimit.enabled', () => {
    const next = cfg(
      'server: {address: "0.0.0.0:9191", tls: {cert_file: c, key_file: k}}\nadmin: {address: "127.0.0.1:9999", tokens: [{name: a, sha256: "' +
        'a'.repeat(64) +
        '"}]}\nlogging: {level: debug}\ncheck: {enabled: false, deadline_ms: 99}\nratelimit: {enabled: true, files: [x.yaml]}\npolicy: {bundle: {file: b.tar.gz}, dry_run: true}\n',
    );
    expect(restartOnlyChanges(running, next)).toEqual(['/admin/address', '/check/enabled', '/logging/level', '/server/address', '/server/tls']);
  });

  it('names nothing when only live keys change', () => {
    const next = cfg('server: {address: "127.0.0.1:9191"}\nadmin: {address: "127.0.0.1:9192"}\npolicy: {bundle: {file: b.tar.gz}, dry_run: true}\nroutes: [{name: r, match: {path_prefix: /p}, public: true}]\n');
    expect(restartOnlyChanges(running, next)).toEqual([]);
  });

  it('applies the new config with the running values of the restart-only keys', () => {
    const next = cfg('server: {address: "0.0.0.0:1"}\nadmin: {address: "127.0.0.1:1", tokens: [{name: a, sha256: "' + 'b'.repeat(64) + '"}]}\ncheck: {enabled: false, deadline_ms: 99}\npolicy: {bundle: {file: b.tar.gz}, dry_run: true}\n');
    const applied = withRunningListeners(running, next);
    expect(applied.server).toBe(running.server);
    expect(applied.admin).toEqual({ ...next.admin, address: '127.0.0.1:9192' });
    expect(applied.check).toEqual({ ...next.check, enabled: true });
    expect(applied.policy?.dry_run).toBe(true);
    expect(Object.isFrozen(applied) && Object.isFrozen(applied.admin)).toBe(true);
  });
});
