// Which engine runs a `pattern` keyword: V8's RegExp only where its backtracking is provably
// bounded, RE2 everywhere else; where V8 runs a pattern it answers as RE2 does; every pattern is
// compiled by RE2 first, so one RE2 refuses still fails.
import { RE2 } from 're2-wasm';
import { describe, expect, it } from 'vitest';
import { BoundedPattern, boundedOnV8, patternEngine, patternShape } from '../../../src/openapi/pattern-engine.js';
import { rngInt } from '../../helpers/random.js';

/** Patterns in the subset, with strings to try them on (matching and not). */
const ON_V8: [string, string[]][] = [
  ['^[A-Z]{3}$', ['EUR', 'eur', 'EURO', 'EU', '', 'E1R']],
  ['^[0-9A-Z -]{3,10}$', ['75001', 'SW1A 1AA', 'ab', '12', '1234567890A', '12-34']],
  ['^[A-Z]{3}-[0-9]{3}$', ['ABC-123', 'ABC123', 'abc-123', 'ABC-1234']],
  ['^\\d{4}-\\d{2}-\\d{2}$', ['2026-12-01', '2026-1-01', '２０２６-12-01', '2026-12-011']],
  ['^[a-zA-Z0-9_-]+$', ['abc_DEF-1', '', 'a b', 'é', 'a'.repeat(300)]],
  ['^\\w+$', ['word_1', 'wörd', ' ', '_']],
  ['^[^,]{2}$', ['ab', 'a,', 'é!', 'abc', '\n\r']],
  ['[0-9]{3}', ['a123b', '12', '1a2b3', '९९९']],
  ['^\\u00e9{2}\\x41?$', ['éé', 'ééA', 'é', 'éA']],
  ['^\\u{1F600}+$', ['😀😀', '😀', ':)']],
  ['^😀[a-c]??$', ['😀', '😀a', '😀d']],
  ['^\\$\\.\\*\\+\\?\\(\\)\\[\\]\\{\\}\\|\\/\\^\\\\$', ['$.*+?()[]{}|/^\\', '$']],
  ['^[\\]\\[\\-\\\\a-c]{1,4}$', [']', '[-', '\\\\', 'abc', 'd']],
  ['^a\\t\\n\\r\\f\\v\\0$', ['a\t\n\r\f\v\0', 'a']],
  ['^[a-z]{2,}$', ['ab', 'a', 'abc1']],
  ['^\\D\\W{0,2}$', ['a', 'a!!', '1', 'a!!!']],
];

const ON_RE2 = [
  '^([a-z]+)*$', // groups
  '^(a|b)$', // alternation
  'a|b',
  '^a+b+$', // two unbounded quantifiers
  '[a-z]+x', // unanchored, unbounded: quadratic on a backtracking engine
  '^.{1,5}$', // `.`: \r and \u2028 read differently by the two engines
  '^\\s+$', // \s: Unicode spaces in ECMA-262, ASCII in RE2
  '^\\bword$',
  '^(a)\\1$',
  '^(?=a)a$',
  '^\\p{L}+$',
  '^\\cJ$',
  '^[a-z]{1,100}[a-z]{1,100}$', // 10,000 choices x 202: over the constant bound
  '[a-z]{1,8}[0-9]{1,8}', // unanchored: 64 choices x 19 steps per character
  '^[a-z]{0,10}[a-z]*$', // one unbounded, but 11 x 13 steps per character
  '^[[:alpha:]]$',
  '^a{2,1}$',
  '^a{,3}$',
  '^*$',
  ']',
  '^\\01$',
  '[a-z]+1$', // ends with $ but is not anchored at its start: quadratic
  '[a-z]{1,}1', // {1,} is unbounded
  '^[][]$', // [] and [^]: nothing and anything in ECMA-262, a class holding ] in RE2
  '^[^][a]$',
  '^\\uD83D\\uDE00$', // surrogates by their code: paired by one engine, not the other
  '^\\u{DC00}$',
  '^\\u{41$',
];

describe('pattern engine', () => {
  it('runs the bounded subset on V8 and answers as RE2 does', () => {
    for (const [pattern, values] of ON_V8) {
      expect(boundedOnV8(pattern), pattern).toBe(true);
      const engine = patternEngine(pattern, 'u');
      expect(engine, pattern).toBeInstanceOf(BoundedPattern);
      const re2 = new RE2(pattern, 'u');
      for (const v of values) expect(engine.test(v), `${pattern} on ${JSON.stringify(v)}`).toBe(re2.test(v));
    }
  });

  it('answers as RE2 on random strings over each pattern\'s alphabet', () => {
    const alphabet = [...'aAzZ09_- .,$é😀\t\n\r\u2028!{}[]\\', '\ud83d', '\ude00', '\ud800'];
    const next = rngInt(7);
    for (const [pattern] of ON_V8) {
      const engine = patternEngine(pattern, 'u');
      const re2 = new RE2(pattern, 'u');
      for (let k = 0; k < 300; k++) {
        let v = '';
        for (let len = next(12); len > 0; len--) v += alphabet[next(alphabet.length)];
        expect(engine.test(v), `${pattern} on ${JSON.stringify(v)}`).toBe(re2.test(v));
      }
    }
  });

  it('names each pattern by its text (Ajv shares compiled patterns by that name)', () => {
    const a = patternEngine('^[a-z]{3}$', 'u');
    const b = patternEngine('^[0-9]{4}$', 'u');
    expect(String(a)).toBe('/^[a-z]{3}$/u');
    expect(String(b)).not.toBe(String(a));
  });

  it('leaves everything else on RE2', () => {
    for (const pattern of ON_RE2) expect(boundedOnV8(pattern), pattern).toBe(false);
    expect(patternEngine('^a+b+$', 'u')).toBeInstanceOf(RE2);
    // In the subset, but ECMA-262's u mode refuses it where RE2 reads it: RE2, as before.
    expect(patternShape('^a\\-b$')).toBeDefined();
    const dash = patternEngine('^a\\-b$', 'u');
    expect(dash).toBeInstanceOf(RE2);
    expect(dash.test('a-b')).toBe(true);
  });

  it('still refuses what RE2 cannot run, whichever engine would run it', () => {
    expect(() => patternEngine('^(?=a)a$', 'u')).toThrow();
    expect(() => patternEngine('^(a)\\1$', 'u')).toThrow();
    // In the subset's shape, but RE2 refuses them: the load fails as before.
    expect(boundedOnV8('^a{1001}$')).toBe(true);
    expect(() => patternEngine('^a{1001}$', 'u')).toThrow();
    expect(() => patternEngine('^[\\b]$', 'u')).toThrow();
  });

  it('answers a value with a lone surrogate as RE2 does', () => {
    const engine = patternEngine('^\\W\\d$', 'u');
    expect(engine).toBeInstanceOf(BoundedPattern);
    for (const v of ['\ud8001', '\udc00\ud800', '!1', '😀1']) expect(engine.test(v), JSON.stringify(v)).toBe(new RE2('^\\W\\d$', 'u').test(v));
  });

  it('counts choices and steps', () => {
    expect(patternShape('^[A-Z]{3}$')).toEqual({ anchored: true, unbounded: 0, steps: 5 });
    expect(patternShape('^[0-9A-Z -]{3,10}$')).toEqual({ anchored: true, unbounded: 0, steps: 8 * 12 });
    expect(patternShape('^a+b?$')).toEqual({ anchored: true, unbounded: 1, steps: 2 * (2 + 2 + 1) });
    expect(patternShape('x{1,999999}{')).toBeUndefined();
  });

  it('stays linear on hostile values where V8 runs the pattern', () => {
    // Each the worst its shape allows: a long run the pattern almost matches, then a miss.
    const cases: [string, string][] = [
      ['^[a-z]+1$', `${'a'.repeat(1_000_000)}!`],
      ['[a-z]{3}1', 'a'.repeat(1_000_000)],
      ['^[a-z]{0,1}[a-z]*1$', `${'a'.repeat(1_000_000)}!`],
      ['^[^1]*?[^1]?1$', `${'😀'.repeat(500_000)}!`],
    ];
    for (const [pattern, value] of cases) {
      const engine = patternEngine(pattern, 'u');
      expect(engine, pattern).toBeInstanceOf(BoundedPattern);
      const started = performance.now();
      expect(engine.test(value)).toBe(false);
      expect(performance.now() - started, pattern).toBeLessThan(1000);
    }
  });
});
