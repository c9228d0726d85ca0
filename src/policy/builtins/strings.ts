// strings.any_prefix_match / any_suffix_match, strings.count, indexof_n (topdown/strings.go).
// Positions count code points, as Go's runes do.
import { BuiltinArgError, str, type Json, type Value } from './values.js';

function stringsOf(v: Json, operand: number): string[] {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v) && v.every((x): x is string => typeof x === 'string')) return v;
  throw new BuiltinArgError(`operand ${operand} must be one of {string, set, array} of strings`);
}

function anyAffix(suffix: boolean): (search: Json, base: Json) => Value {
  return (search, base) => {
    const strs = stringsOf(search, 1);
    const affixes = stringsOf(base, 2);
    return strs.some((s) => affixes.some((a) => (suffix ? s.endsWith(a) : s.startsWith(a))));
  };
}

/** Go's strings.Count: non-overlapping; an empty substring counts code points + 1. */
function count(s: Json, sub: Json): Value {
  const text = str(s, 1);
  const search = str(sub, 2);
  if (search === '') return [...text].length + 1;
  return text.split(search).length - 1;
}

function indexOfN(s: Json, sub: Json): Value {
  const base = [...str(s, 1)];
  const search = [...str(sub, 2)];
  if (search.length === 0) throw new BuiltinArgError('empty search character');
  const out: number[] = [];
  for (let i = 0; i + search.length <= base.length; i++) {
    if (search.every((c, j) => base[i + j] === c)) out.push(i);
  }
  return out;
}

export const stringsBuiltins: Record<string, (...args: Json[]) => Value> = {
  'strings.any_prefix_match': anyAffix(false),
  'strings.any_suffix_match': anyAffix(true),
  'strings.count': count,
  indexof_n: indexOfN,
};
