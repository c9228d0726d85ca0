// Which engine runs a schema's `pattern` keyword. RE2 (re2-wasm) is linear in the input whatever
// the pattern, but every test crosses into wasm and copies the string there: about 4 us a string
// on the bench's spec, eight strings a request. V8's own RegExp backtracks - a pattern such as
// ^(a+)+$ takes exponential time on a hostile value - but on a small class of patterns its work
// is provably bounded, and there it is used instead:
//
// - the pattern is a sequence of single-character items (a literal, an escaped character, \d \w
//   and their negations, a [class] of those), anchors ^ and $, each item with at most one
//   quantifier; no group, alternation, back-reference, lookaround, property escape, `.`, \s or
//   \b, no empty class and no surrogate written by its code (where ECMA-262 and RE2 read a
//   pattern differently, so a value gets the same answer from either engine; a value with a lone
//   surrogate, which re2-wasm reads its own way, is still answered by RE2);
// - and its backtracking is bounded: with C = (the product of (max - min + 1) over the bounded
//   quantifiers) x (items + the sum of their maxima + 1), at most C steps from any start position:
//   - ^-anchored, no unbounded quantifier: one start, C <= 10,000 steps whatever the input;
//   - ^-anchored with one unbounded quantifier (* + {n,}), or unanchored with none: C steps per
//     input character, C <= 16 - linear, as RE2 (a 1 MB value: tens of ms on either engine).
// Anything else runs on RE2, as before. Every pattern is still compiled by RE2 at load, so a
// pattern RE2 cannot run fails the spec's load whichever engine would run it.
import { RE2 } from 're2-wasm';

/** What bounds a pattern's backtracking (see above). */
export interface PatternShape {
  readonly anchored: boolean;
  /** Quantifiers without a maximum: * + {n,}. */
  readonly unbounded: number;
  /** Steps from one start position: choices x (items + characters matched + 1). */
  readonly steps: number;
}

const CONSTANT_STEPS = 10_000;
const STEPS_PER_CHARACTER = 16;
/** Past this the product is not computed further (it already exceeds every bound). */
const CAP = 1_000_000;

const HEX = /^[0-9a-fA-F]$/;
/** Characters that need an escape to be literal (ECMA-262 SyntaxCharacter, and `/` and `-`). */
const SYNTAX = '^$\\.*+?()[]{}|/-';
const CONTROL = 'tnrfv';

/** Length of the escape at `i` (the backslash) when it is one of the subset's, else 0. */
function escapeLength(p: string, i: number, inClass: boolean): number {
  const c = p[i + 1];
  if (c === undefined) return 0;
  if ('dDwW'.includes(c) || SYNTAX.includes(c) || CONTROL.includes(c)) return 2;
  if (c === '0') return p[i + 2] !== undefined && /[0-9]/.test(p[i + 2]!) ? 0 : 2;
  if (c === 'b') return inClass ? 2 : 0; // [\b] is a backspace; \b outside a class is a word boundary
  if (c === 'x') return HEX.test(p[i + 2] ?? '') && HEX.test(p[i + 3] ?? '') ? 4 : 0;
  if (c === 'u') {
    // A surrogate by its code (\uD83D, \u{DC00}): RE2 and ECMA-262 pair and match them differently.
    const braced = p[i + 2] === '{';
    const end = braced ? p.indexOf('}', i + 3) : i + 6;
    if (end < 0) return 0;
    const hex = p.slice(braced ? i + 3 : i + 2, end);
    if ((braced ? hex.length === 0 || hex.length > 6 : hex.length !== 4) || ![...hex].every((h) => HEX.test(h))) return 0;
    const code = parseInt(hex, 16);
    return code >= 0xd800 && code <= 0xdfff ? 0 : end - i + (braced ? 1 : 0);
  }
  return 0;
}

/** Length of the [class] at `i`, or 0 when it holds anything outside the subset. */
function classLength(p: string, i: number): number {
  let j = i + 1;
  if (p[j] === '^') j++;
  // [] and [^] match nothing and anything in ECMA-262; RE2 reads that ] as a member.
  if (p[j] === ']') return 0;
  while (j < p.length && p[j] !== ']') {
    if (p[j] === '\\') {
      const n = escapeLength(p, j, true);
      if (n === 0) return 0;
      j += n;
    } else if (p[j] === '[') {
      return 0; // literal in u mode, a nested class in v mode: not worth telling apart
    } else {
      j++;
    }
  }
  return j < p.length ? j - i + 1 : 0;
}

/** The quantifier at `i`: its length and [min, max] (max Infinity when unbounded); length 0 when there is none. */
function quantifier(p: string, i: number): { length: number; min: number; max: number } | undefined {
  const c = p[i];
  let q: { length: number; min: number; max: number } | undefined;
  if (c === '*') q = { length: 1, min: 0, max: Infinity };
  else if (c === '+') q = { length: 1, min: 1, max: Infinity };
  else if (c === '?') q = { length: 1, min: 0, max: 1 };
  else if (c === '{') {
    const m = /^\{(\d{1,6})(,(\d{0,6}))?\}/.exec(p.slice(i));
    if (!m) return undefined;
    const min = Number(m[1]);
    const max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
    if (max < min) return undefined;
    q = { length: m[0].length, min, max };
  } else {
    return { length: 0, min: 1, max: 1 };
  }
  // A lazy quantifier explores the same choices in another order.
  if (p[i + q.length] === '?') q = { ...q, length: q.length + 1 };
  return q;
}

/** The pattern's shape when it is in the subset above, else undefined. */
export function patternShape(p: string): PatternShape | undefined {
  let i = 0;
  const anchored = p.startsWith('^');
  let unbounded = 0;
  let choices = 1;
  let items = 0;
  let chars = 0;
  while (i < p.length) {
    const c = p[i]!;
    if (c === '^' || c === '$') {
      i++;
      continue;
    }
    let atom: number;
    if (c === '\\') atom = escapeLength(p, i, false);
    else if (c === '[') atom = classLength(p, i);
    else if ('.()|*+?{}]'.includes(c)) atom = 0;
    else atom = c.codePointAt(0)! > 0xffff ? 2 : 1;
    if (atom === 0) return undefined;
    i += atom;
    const q = quantifier(p, i);
    if (!q) return undefined;
    i += q.length;
    items++;
    if (q.max === Infinity) {
      unbounded++;
      chars += q.min;
    } else {
      choices = Math.min(CAP, choices * (q.max - q.min + 1));
      chars = Math.min(CAP, chars + q.max);
    }
  }
  return { anchored, unbounded, steps: Math.min(CAP, choices * (items + chars + 1)) };
}

/** Whether V8's backtracking RegExp runs `pattern` in bounded time (see above). */
export function boundedOnV8(pattern: string): boolean {
  const s = patternShape(pattern);
  if (!s) return false;
  if (s.anchored && s.unbounded === 0) return s.steps <= CONSTANT_STEPS;
  if ((s.anchored && s.unbounded === 1) || (!s.anchored && s.unbounded === 0)) return s.steps <= STEPS_PER_CHARACTER;
  return false;
}

/** A lone surrogate (a pair is one code point in u mode). */
const LONE_SURROGATE = /[\ud800-\udfff]/u;

/**
 * A pattern bounded on V8, run there - except on a string with a lone surrogate, which re2-wasm
 * reads its own way (it joins a surrogate with whatever follows): RE2 answers that one, as before.
 */
export class BoundedPattern {
  constructor(
    private readonly v8: RegExp,
    private readonly re2: RE2,
  ) {}

  test(s: string): boolean {
    return LONE_SURROGATE.test(s) ? this.re2.test(s) : this.v8.test(s);
  }

  /** `/pattern/u`: Ajv keys its compiled patterns by this text, so it must differ per pattern. */
  toString(): string {
    return this.v8.toString();
  }
}

/**
 * Ajv's `code.regExp`: RE2 compiles every pattern (so one it cannot run fails the load, naming
 * it); a pattern bounded on V8 then runs on V8's RegExp, every other on RE2.
 */
export const patternEngine = Object.assign(
  (pattern: string, flags: string): { test(s: string): boolean; toString(): string } => {
    const u = flags.includes('u') ? flags : `${flags}u`;
    const re2 = new RE2(pattern, u);
    if (u !== 'u' || !boundedOnV8(pattern)) return re2;
    try {
      return new BoundedPattern(new RegExp(pattern, 'u'), re2);
    } catch {
      return re2; // RE2 reads it (\- outside a class, say), ECMA-262's u mode does not: as before, RE2
    }
  },
  { code: 'new RE2' },
);
