import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileRateLimitFile, loadRateLimitFiles } from '../../../src/ratelimit/config.js';
import { matchDescriptor, type Entry } from '../../../src/ratelimit/matcher.js';
import { ConfigError } from '../../../src/lib/errors.js';
import { ROOT } from '../../helpers/service.js';
import { tempDir } from '../../helpers/tmp.js';

const FIXTURES = join(ROOT, 'test', 'fixtures', 'ratelimit', 'invalid');
const opts = { algorithm: 'fixed_window' as const };

// The shape of envoyproxy/ratelimit's own test configs, covering every matching rule.
const CONFIG = `
domain: test-domain
descriptors:
  - key: key1
    value: value1
    descriptors:
      - key: subkey1
        rate_limit: {unit: second, requests_per_unit: 5, name: sub1}
      - key: subkey2
        value: fixed
        rate_limit: {unit: minute, requests_per_unit: 10}
  - key: key1
    rate_limit: {unit: hour, requests_per_unit: 20}
  - key: key2
    value: prefix_*
    rate_limit: {unit: day, requests_per_unit: 30}
  - key: key2
    value: prefix_long_*
    rate_limit: {unit: day, requests_per_unit: 31}
  - key: key2
    value: exact
    rate_limit: {unit: day, requests_per_unit: 32}
  - key: key3
    descriptors:
      - key: deep
        rate_limit: {unit: second, requests_per_unit: 40}
  - key: key4
    rate_limit: {unlimited: true}
  - key: key5
    value: v
    rate_limit: {unit: second, requests_per_unit: 50, replaces: [{name: sub1}]}
  - key: key6
    rate_limits:
      - {unit: minute, requests_per_unit: 60, burst: 6}
      - {window_seconds: 86400, requests_per_unit: 6000, quota: true, name: daily}
    shadow_mode: true
`;

const domain = compileRateLimitFile('t.yaml', CONFIG, opts);
const e = (...pairs: [string, string][]): Entry[] => pairs.map(([key, value]) => ({ key, value }));
const rpu = (entries: Entry[]): number | undefined => matchDescriptor(domain, entries)?.limits[0]?.requestsPerUnit;

describe('descriptor matching (envoyproxy/ratelimit rules)', () => {
  it.each([
    ['exact value, then a key-only child', e(['key1', 'value1'], ['subkey1', 'anything']), 5],
    ['exact child value', e(['key1', 'value1'], ['subkey2', 'fixed']), 10],
    ['key-only when the value does not match', e(['key1', 'other']), 20],
    ['exact beats wildcards', e(['key2', 'exact']), 32],
    ['wildcards in file order: the first matching prefix wins', e(['key2', 'prefix_long_x']), 30],
    ['wildcard prefix', e(['key2', 'prefix_a']), 30],
    ['nested key-only', e(['key3', 'x'], ['deep', 'y']), 40],
  ])('%s', (_name, entries, expected) => {
    expect(rpu(entries)).toBe(expected);
  });

  it.each([
    ['no such key', e(['nope', 'x'])],
    ['wildcard without match and no key-only', e(['key2', 'other'])],
    ['depth mismatch: more entries than the tree', e(['key1', 'other'], ['subkey1', 'x'])],
    ['depth mismatch: the limit is deeper than the request', e(['key3', 'x'])],
    ['no backtracking: exact branch taken, its child is missing', e(['key1', 'value1'], ['other', 'x'])],
    ['a limit only at the last entry', e(['key1', 'value1'])],
  ])('no limit: %s', (_name, entries) => {
    expect(matchDescriptor(domain, entries)).toBeUndefined();
  });

  it('marks unlimited, replaces, shadow mode and several limits', () => {
    expect(matchDescriptor(domain, e(['key4', 'x']))?.limits[0]?.unlimited).toBe(true);
    expect(matchDescriptor(domain, e(['key5', 'v']))?.limits[0]?.replaces).toEqual(['sub1']);
    const six = matchDescriptor(domain, e(['key6', 'x']))!.limits;
    expect(six.map((l) => [l.requestsPerUnit, l.windowSeconds, l.burst, l.algorithm, l.shadow])).toEqual([
      [60, 60, 6, 'fixed_window', true],
      [6000, 86400, 6000, 'fixed_window', true],
    ]);
  });

  it('keys different descriptors apart, escaping separators', () => {
    const a = matchDescriptor(domain, e(['key1', 'a|b=c']))!.keyBase;
    const b = matchDescriptor(domain, e(['key1', 'a']))!.keyBase;
    expect(a).not.toBe(b);
    expect(a).not.toContain('a|b');
  });

  it('loads the local stack file', async () => {
    const d = await loadRateLimitFiles([join(ROOT, 'envoy', 'local', 'ratelimit.yaml')], { algorithm: 'token_bucket' });
    expect([...d.keys()]).toEqual(['envoy-authz']);
  });

  it('refuses a domain defined twice', async () => {
    const tmp = tempDir();
    const a = tmp.write('a.yaml', 'domain: same\n');
    const b = tmp.write('b.yaml', 'domain: same\n');
    await expect(loadRateLimitFiles([a, b], opts)).rejects.toMatchObject({ file: b, problems: [{ keyPath: '/domain' }] });
  });
});

describe('invalid rate-limit config fixtures', async () => {
  const files = (await readdir(FIXTURES)).filter((f) => f.endsWith('.yaml')).sort();
  it.each(files)('%s is rejected with file, key path and problem', async (name) => {
    const file = join(FIXTURES, name);
    const text = await readFile(file, 'utf8');
    const keyPath = /^# expect: (\S+)$/m.exec(text)?.[1];
    const problem = /^# problem: (.+)$/m.exec(text)?.[1];
    const err = await loadRateLimitFiles([file], opts).then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(err).toBeInstanceOf(ConfigError);
    const hit = (err as ConfigError).problems.find((p) => p.keyPath === keyPath);
    expect(hit, `problems: ${JSON.stringify((err as ConfigError).problems)}`).toBeDefined();
    expect(hit!.problem).toContain(problem);
  });
});

describe('rate-limit configuration reload', () => {
  it('swaps in a changed file and keeps the old configuration when the new one is bad', async () => {
    const { RateLimitConfigs } = await import('../../../src/ratelimit/reloader.js');
    const { createLogger } = await import('../../../src/telemetry/logger.js');
    const { capture } = await import('../../helpers/log.js');
    const { utimesSync } = await import('node:fs');
    const tmp = tempDir();
    const file = tmp.write('rl.yaml', 'domain: one\n');
    const logs = capture();
    const configs = new RateLimitConfigs([file], opts, createLogger('info', logs.stream));
    await configs.start(60_000);
    try {
      expect([...configs.domains.keys()]).toEqual(['one']);
      tmp.write('rl.yaml', 'domain: two\n');
      utimesSync(file, new Date(), new Date(Date.now() + 5000));
      await configs.check();
      expect([...configs.domains.keys()]).toEqual(['two']);
      tmp.write('rl.yaml', 'domain: three\nbogus: 1\n');
      utimesSync(file, new Date(), new Date(Date.now() + 10000));
      await configs.check();
      expect([...configs.domains.keys()]).toEqual(['two']);
      expect(configs.failures).toBe(1);
      expect(logs.lines().map((l) => l.event)).toEqual(['ratelimit_config_reloaded', 'ratelimit_config_rejected']);
    } finally {
      configs.stop();
    }
  });
});

describe('what a compiled rate-limit file keeps', () => {
  it('under 1,100 bytes of heap per descriptor: leaves share one empty map and list (they kept about 1,220 bytes each)', async () => {
    const v8 = await import('node:v8');
    const { runInNewContext } = await import('node:vm');
    v8.setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const lines = ['domain: growth', 'descriptors:'];
    for (let i = 0; i < 10_000; i++) lines.push('  - key: tenant', `    value: t${i}`, '    rate_limit: { unit: second, requests_per_unit: 1000000 }');
    const text = `${lines.join('\n')}\n`;
    gc();
    const before = v8.getHeapStatistics().used_heap_size;
    const d = compileRateLimitFile('growth.yaml', text, { algorithm: 'token_bucket' });
    gc();
    const perDescriptor = (v8.getHeapStatistics().used_heap_size - before) / 10_000;
    expect(d.root.children.size).toBe(10_000);
    expect(perDescriptor).toBeLessThan(1_100);
    // Shared, and never written to: a leaf has no children, and every node matches as before.
    const [a, b] = [d.root.children.get('tenant_t1')!, d.root.children.get('tenant_t2')!];
    expect(a.children).toBe(b.children);
    expect(a.children.size).toBe(0);
    expect(matchDescriptor(d, [{ key: 'tenant', value: 't9999' }])?.limits[0]?.requestsPerUnit).toBe(1_000_000);
  });
});

