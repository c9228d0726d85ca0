import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfigFile, parseConfig } from '../../../src/config/loader.js';
import { schemaJson } from '../../../src/config/schema.js';
import { ConfigError } from '../../../src/lib/errors.js';

const FIXTURES = join(import.meta.dirname, '..', '..', 'fixtures', 'config', 'invalid');
const ROOT = join(import.meta.dirname, '..', '..', '..');

describe('config loader', () => {
  it('fills every default from an empty file', () => {
    const cfg = parseConfig('empty.yaml', '');
    expect(cfg.server.address).toBe('127.0.0.1:9191');
    expect(cfg.check.deadline_ms).toBe(150);
    expect(cfg.check.on_error.mode).toBe('grpc_error');
    expect(cfg.authentication).toMatchObject({ header: 'authorization', scheme: 'Bearer', max_token_bytes: 8192, forward_credential: false });
    expect(cfg.routes).toEqual([]);
    expect(Object.isFrozen(cfg.server)).toBe(true);
  });

  it('fills issuer defaults: asymmetric algorithms, clock tolerance at most 60 s', () => {
    const cfg = parseConfig('x.yaml', 'authentication:\n  jwt:\n    issuers:\n      - issuer: a\n        audiences: [b]\n        jwks: {file: j.json}\n');
    const iss = cfg.authentication.jwt.issuers[0]!;
    expect(iss.algorithms).toEqual(['ES256', 'RS256']);
    expect(iss.clock_tolerance_s).toBeLessThanOrEqual(60);
    expect(iss.jwks).toMatchObject({ timeout_ms: 5000, cooldown_ms: 30000, allow_insecure_http: false });
  });

  it('takes an http:// introspection URL only with allow_insecure_http: true', () => {
    const intro = (url: string, flag?: boolean): string =>
      `authentication:\n  introspection:\n    url: "${url}"\n    client_id: c\n    client_secret_file: s${flag === undefined ? '' : `\n    allow_insecure_http: ${flag}`}\n`;
    expect(parseConfig('i.yaml', intro('https://idp.example/introspect')).authentication.introspection?.allow_insecure_http).toBe(false);
    expect(parseConfig('i.yaml', intro('http://127.0.0.1:8080/introspect', true)).authentication.introspection?.url).toBe('http://127.0.0.1:8080/introspect');
    for (const [url, flag] of [['http://idp.example/introspect', undefined], ['http://idp.example/introspect', false], ['ftp://idp.example/x', true]] as const) {
      expect(() => parseConfig('i.yaml', intro(url, flag))).toThrow(/i\.yaml: \/authentication\/introspection\/url: must be https \(or http with allow_insecure_http: true\)/);
    }
  });

  it('loads the local stack config', async () => {
    const loaded = await loadConfigFile(join(ROOT, 'envoy', 'local', 'authz.yaml'));
    expect(loaded.config.authentication.jwt.issuers).toHaveLength(1);
  });

  it('names the file when it cannot be read', async () => {
    await expect(loadConfigFile('/nonexistent/authz.yaml')).rejects.toMatchObject({
      code: 'config_invalid',
      file: '/nonexistent/authz.yaml',
      problems: [{ keyPath: '/', problem: 'cannot read file (ENOENT)' }],
    });
  });

  it('keeps docs/config.schema.json equal to the schema (run `make schema`)', async () => {
    expect(await readFile(join(ROOT, 'docs', 'config.schema.json'), 'utf8')).toBe(schemaJson());
  });
});

describe('invalid config fixtures', async () => {
  const files = (await readdir(FIXTURES)).filter((f) => f.endsWith('.yaml')).sort();

  it('has one fixture per invalid case', () => {
    expect(files.length).toBeGreaterThanOrEqual(25);
  });

  it.each(files)('%s is rejected with file, key path and problem', async (name) => {
    const file = join(FIXTURES, name);
    const text = await readFile(file, 'utf8');
    const keyPath = /^# expect: (\S+)$/m.exec(text)?.[1];
    const problem = /^# problem: (.+)$/m.exec(text)?.[1];
    expect(keyPath, 'fixture declares # expect:').toBeDefined();
    expect(problem, 'fixture declares # problem:').toBeDefined();

    const err = await loadConfigFile(file).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    const ce = err as ConfigError;
    expect(ce.file).toBe(file);
    expect(ce.problems.map((p) => p.keyPath)).toContain(keyPath);
    const hit = ce.problems.find((p) => p.keyPath === keyPath)!;
    expect(hit.problem).toContain(problem);
    expect(ce.message).toContain(`${file}: ${keyPath}: `);
  });
});
