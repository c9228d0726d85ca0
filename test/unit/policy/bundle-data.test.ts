// Bundle data files are merged by their path: a member path or a key named __proto__ is data, and
// never reaches an object's prototype (an unsigned URL bundle must not pollute the process).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseBundle } from '../../../src/policy/bundle.js';
import { opaBinary } from '../../helpers/opa.js';
import { tempDir } from '../../helpers/tmp.js';

describe('bundle data', () => {
  const tmp = tempDir();

  it('keeps __proto__ paths and keys as data, without touching Object.prototype', async () => {
    const src = join(tmp.dir, 'src');
    mkdirSync(join(src, '__proto__'), { recursive: true });
    writeFileSync(join(src, 'policy.rego'), 'package envoy.authz\nimport rego.v1\ndefault allow := false\n');
    writeFileSync(join(src, '__proto__', 'data.json'), '{"polluted": "yes"}');
    writeFileSync(join(src, 'data.json'), '{"__proto__": {"alsoPolluted": "yes"}, "plain": 1}');
    const out = join(tmp.dir, 'b.tar.gz');
    execFileSync(opaBinary(), ['build', '-b', '-t', 'wasm', '-e', 'envoy/authz/allow', '-o', out, src], { stdio: 'pipe' });
    const bundle = await parseBundle(readFileSync(out));
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).alsoPolluted).toBeUndefined();
    const data = bundle.data;
    expect(Object.getPrototypeOf(data)).toBe(Object.prototype);
    expect(Object.hasOwn(data, '__proto__')).toBe(true);
    expect(JSON.parse(JSON.stringify(data))).toEqual(JSON.parse('{"plain": 1, "__proto__": {"polluted": "yes", "alsoPolluted": "yes"}}'));
  });
});
