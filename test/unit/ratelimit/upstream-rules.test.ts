// envoyproxy/ratelimit main's rules that its pinned binary (the conformance test's peer) predates
// or that need a unit-level look: wildcards with `*` inside a value (its TestWildcardConfig on
// its test/config/wildcard.yaml), share_threshold counters, stat keys, domain merge, its file
// reading quirks, the per-descriptor stats of limiter/base_limiter.go, and the bounded labels.
import { describe, expect, it } from 'vitest';
import { compileRateLimitFile, loadRateLimitFiles } from '../../../src/ratelimit/config.js';
import { matchDescriptor, wildcardMatch, type Entry } from '../../../src/ratelimit/matcher.js';
import { descriptorStats, nearLimitThreshold, StatKeys } from '../../../src/ratelimit/stats.js';
import { ConfigError } from '../../../src/lib/errors.js';
import { tempDir } from '../../helpers/tmp.js';

const opts = { algorithm: 'fixed_window' as const };
const e = (...pairs: [string, string][]): Entry[] => pairs.map(([key, value]) => ({ key, value }));

// upstream test/config/wildcard.yaml
const WILDCARD = `
domain: test-domain
descriptors:
  - {key: wild, value: foo*, rate_limit: {unit: minute, requests_per_unit: 20}}
  - {key: noWild, value: foo, rate_limit: {unit: minute, requests_per_unit: 20}}
  - {key: noVal, rate_limit: {unit: minute, requests_per_unit: 20}}
  - {key: midWild, value: bar*b, rate_limit: {unit: minute, requests_per_unit: 20}}
  - {key: multiWild, value: foo*bar*baz, rate_limit: {unit: minute, requests_per_unit: 10}}
  - key: nestedWild
    value: val1
    descriptors:
      - {key: wild, value: goo*, rate_limit: {unit: minute, requests_per_unit: 20}}
`;

describe('wildcards as envoyproxy/ratelimit main (TestWildcardConfig)', () => {
  const d = compileRateLimitFile('wildcard.yaml', WILDCARD, opts);
  const stat = (...pairs: [string, string][]): string | undefined => matchDescriptor(d, e(...pairs))?.statKey;

  it.each([
    [[['noVal', 'foo1']], 'test-domain.noVal'],
    [[['wild', 'foo1']], 'test-domain.wild_foo*'],
    [[['wild', 'foo2']], 'test-domain.wild_foo*'],
    [[['nestedWild', 'val1'], ['wild', 'goo2']], 'test-domain.nestedWild_val1.wild_goo*'],
    [[['midWild', 'barab']], 'test-domain.midWild_bar*b'],
    [[['midWild', 'bar123b']], 'test-domain.midWild_bar*b'],
    [[['midWild', 'barb']], 'test-domain.midWild_bar*b'], // * matches the empty string
    [[['multiWild', 'foo123bar456baz']], 'test-domain.multiWild_foo*bar*baz'],
    [[['multiWild', 'foobarbaz']], 'test-domain.multiWild_foo*bar*baz'],
  ] as [[string, string][], string][])('%j matches with stat key %s', (pairs, key) => {
    expect(stat(...pairs)).toBe(key);
  });

  it.each([[[['wild', 'bar']]], [[['noWild', 'foo1']]], [[['midWild', 'bara']]], [[['midWild', 'xbarb']]], [[['multiWild', 'foobaz']]]] as [[string, string][]][])('%j matches nothing', (pairs) => {
    expect(matchDescriptor(d, e(...pairs))).toBeUndefined();
  });

  it('wildcardMatch: literal, prefix, inner, several, order, overlap', () => {
    const m = (p: string, v: string): boolean => wildcardMatch(p.split('*'), v);
    expect([m('a', 'a'), m('a', 'ab'), m('a*', 'abc'), m('a*c', 'abc'), m('a*c', 'ac'), m('a*b*c', 'axbyc'), m('a*b*c', 'acb'), m('ab*ba', 'aba')]).toEqual([true, false, true, true, true, true, false, false]);
  });
});

describe('share_threshold, value_to_metric, detailed_metric', () => {
  const d = compileRateLimitFile(
    's.yaml',
    `domain: s
descriptors:
  - {key: files, value: "f*", share_threshold: true, rate_limit: {unit: hour, requests_per_unit: 3}}
  - {key: files2, value: "f*", rate_limit: {unit: hour, requests_per_unit: 3}}
  - {key: vtm, value_to_metric: true, rate_limit: {unit: hour, requests_per_unit: 3}}
  - {key: det, detailed_metric: true, rate_limit: {unit: hour, requests_per_unit: 3}}
`,
    opts,
  );
  const m = (...pairs: [string, string][]): ReturnType<typeof matchDescriptor> => matchDescriptor(d, e(...pairs));

  it('one counter for every value a share_threshold wildcard matches, one per value without it', () => {
    expect(m(['files', 'f1'])!.keyBase).toBe(m(['files', 'fzz'])!.keyBase);
    expect(m(['files2', 'f1'])!.keyBase).not.toBe(m(['files2', 'fzz'])!.keyBase);
  });

  it('names the stats as upstream', () => {
    expect(m(['files', 'f1'])!.statKey).toBe('s.files_f*');
    expect(m(['vtm', 'x'])!.statKey).toBe('s.vtm_x');
    expect(m(['det', 'x'])!.statKey).toBe('s.det_x');
    expect(m(['det', 'x'])!.configKey).toBe('s.det');
  });
});

describe("envoyproxy/ratelimit's loader quirks", () => {
  it('reads YAML 1.1 booleans, numbers as their text, the last of a repeated key, and ignores a known key in the wrong place', () => {
    const d = compileRateLimitFile(
      'q.yaml',
      `domain: q
descriptors:
  - {key: s, value: 200, shadow_mode: yes, unit: hour, rate_limit: {unit: hour, requests_per_unit: 1, key: x}}
  - {key: h, value: 0x1F, rate_limit: {unit: hour, requests_per_unit: 1, requests_per_unit: 7}}
`,
      opts,
    );
    expect(matchDescriptor(d, e(['s', '200']))!.limits[0]!.shadow).toBe(true);
    expect(matchDescriptor(d, e(['h', '0x1F']))!.limits[0]!.requestsPerUnit).toBe(7);
    expect(matchDescriptor(d, e(['h', '31']))).toBeUndefined();
  });

  it('accepts unlimited with requests_per_unit or an invalid unit, and an absent requests_per_unit as 0', () => {
    const d = compileRateLimitFile('u.yaml', 'domain: u\ndescriptors:\n  - {key: a, rate_limit: {unlimited: true, requests_per_unit: 5, unit: fortnight}}\n  - {key: b, rate_limit: {unit: hour}}\n', opts);
    expect(matchDescriptor(d, e(['a', 'x']))!.limits[0]!.unlimited).toBe(true);
    expect(matchDescriptor(d, e(['b', 'x']))!.limits[0]!.requestsPerUnit).toBe(0);
  });

  it.each([
    ['a limit that replaces itself', '{key: a, rate_limit: {unit: hour, requests_per_unit: 1, name: me, replaces: [{name: me}]}}', 'replaces should not contain the name'],
    ['share_threshold without a wildcard', '{key: a, value: b, share_threshold: true, rate_limit: {unit: hour, requests_per_unit: 1}}', 'share_threshold can only be used with wildcard'],
    ['a float', '{key: a, rate_limit: {unit: hour, requests_per_unit: 1.0}}', 'must not be a float'],
    ['the same wildcard twice', '{key: a, value: "x*"}\n  - {key: a, value: "x*"}', 'duplicate descriptor composite key'],
  ])('refuses %s', (_name, descriptor, problem) => {
    expect(() => compileRateLimitFile('r.yaml', `domain: r\ndescriptors:\n  - ${descriptor}\n`, opts)).toThrow(problem);
  });

  it('merges one domain across files only with mergeDomains, and still refuses a key defined in both', async () => {
    const tmp = tempDir();
    const a = tmp.write('a.yaml', 'domain: m\ndescriptors:\n  - {key: a, rate_limit: {unit: hour, requests_per_unit: 1}}\n');
    const b = tmp.write('b.yaml', 'domain: m\ndescriptors:\n  - {key: b, rate_limit: {unit: hour, requests_per_unit: 2}}\n');
    const c = tmp.write('c.yaml', 'domain: m\ndescriptors:\n  - {key: a, rate_limit: {unit: hour, requests_per_unit: 3}}\n');
    await expect(loadRateLimitFiles([a, b], opts)).rejects.toThrow('duplicate domain');
    const merged = (await loadRateLimitFiles([a, b], { ...opts, mergeDomains: true })).get('m')!;
    expect([matchDescriptor(merged, e(['a', 'x']))!.limits[0]!.requestsPerUnit, matchDescriptor(merged, e(['b', 'x']))!.limits[0]!.requestsPerUnit]).toEqual([1, 2]);
    await expect(loadRateLimitFiles([a, c], { ...opts, mergeDomains: true })).rejects.toBeInstanceOf(ConfigError);
  });

  it('keeps descriptor metadata', () => {
    const d = compileRateLimitFile('m.yaml', 'domain: m\ndescriptors:\n  - {key: a, metadata: {team: x, nums: [1, 2]}, rate_limit: {unit: hour, requests_per_unit: 1}}\n', opts);
    expect(matchDescriptor(d, e(['a', 'v']))!.metadata).toEqual({ team: 'x', nums: [1, 2] });
  });

  it('refuses an alias bomb', () => {
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]', ...Array.from({ length: 8 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10).fill(`*${String.fromCharCode(97 + i)}`).join(', ')}]`), 'domain: d'].join('\n');
    expect(() => compileRateLimitFile('bomb.yaml', bomb, opts)).toThrow(/alias/i);
  });
});

describe('per-descriptor stats (base_limiter.go)', () => {
  it('computes the near-limit threshold in float32', () => {
    expect([nearLimitThreshold(10, 0.8), nearLimitThreshold(10, 0.7), nearLimitThreshold(5, 0.8), nearLimitThreshold(3, 0.8), nearLimitThreshold(0, 0.8)]).toEqual([8, 7, 4, 2, 0]);
  });

  it.each([
    // limit, before, hits, over, shadow -> total, over, near, within, shadow
    [10, 0, 1, false, false, [1, 0, 0, 1, 0]],
    [10, 8, 1, false, false, [1, 0, 1, 1, 0]],
    [10, 7, 3, false, false, [3, 0, 2, 3, 0]],
    [10, 10, 1, true, false, [1, 1, 0, 0, 0]],
    [10, 9, 3, true, false, [3, 2, 1, 0, 0]],
    [10, 5, 10, true, false, [10, 5, 2, 0, 0]],
    [10, 9, 3, true, true, [3, 2, 1, 0, 2]],
    [10, 12, 1, true, true, [1, 1, 0, 0, 1]],
  ] as const)('limit %i, %i before, %i hits, over %s, shadow %s', (limit, before, hits, over, shadow, expected) => {
    const s = descriptorStats(limit, before, hits, over, shadow, 0.8);
    expect([s.totalHits, s.overLimit, s.nearLimit, s.withinLimit, s.shadowMode]).toEqual(expected);
  });

  it('bounds the stat keys that carry request values', () => {
    const k = new StatKeys(2);
    expect([k.label('d.u_a', 'd.u'), k.label('d.u_b', 'd.u'), k.label('d.u_c', 'd.u'), k.label('d.u_a', 'd.u'), k.label('d.u', 'd.u')]).toEqual(['d.u_a', 'd.u_b', 'd.u', 'd.u_a', 'd.u']);
    expect(new StatKeys(10).label('x'.repeat(300), 'd.u')).toHaveLength(256);
  });
});

describe('count_refused_requests (EvaluateMode each) in the memory store', () => {
  it('counts a refused request in every fixed window, the refusing one included, as upstream INCRBY', async () => {
    const { MemoryStore } = await import('../../../src/ratelimit/memory-store.js');
    const { testLimit } = await import('../../helpers/limits.js');
    const fw = (rpu: number): ReturnType<typeof testLimit> => testLimit({ algorithm: 'fixed_window', requestsPerUnit: rpu, windowSeconds: 3600, burst: rpu });
    const now = 7_200_000;
    for (const mode of ['all', 'each'] as const) {
      const s = new MemoryStore(100, () => now);
      const a = { key: 'a', limit: fw(1), hits: 1 };
      const b = { key: 'b', limit: fw(5), hits: 1 };
      await s.evaluate([a], mode);
      const refused = await s.evaluate([a, b], mode);
      expect(refused.map((x) => [x.allowed, x.remaining])).toEqual([
        [false, 0],
        [true, 4],
      ]);
      const after = await s.evaluate([{ ...b, hits: 0 }, { ...a, hits: 0 }], mode);
      // b: counted only in `each`; a: its counter grew past the limit only in `each`.
      expect(after.map((x) => x.used)).toEqual(mode === 'each' ? [1, 2] : [0, 1]);
    }
  });
});
