// OPA's hash of a data.json, byte for byte: every document here is hashed by the real OPA CLI
// (`opa sign`, which hashes files as bundle verification does) and by us, and the digests must be
// equal. The documents are the places where a JS reading of JSON differs from Go's: number
// literals, invalid UTF-8, lone surrogates, duplicate keys, key order beyond the BMP, escapes.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GoJsonError, encodeGoString, parseGoJson } from '../../../src/policy/go-json.js';
import { fileDigest } from '../../../src/policy/signature.js';
import { opaBinary } from '../../helpers/opa.js';
import { tempDir } from '../../helpers/tmp.js';

const tmp = tempDir();
const b = (s: string): Buffer => Buffer.from(s, 'utf8');
const raw = (...parts: (string | number[])[]): Buffer => Buffer.concat(parts.map((p) => (typeof p === 'string' ? b(p) : Buffer.from(p))));

const DOCS: [string, Buffer][] = [
  ['decimals and exponents', b('{"x":1.0,"y":1e2,"z":1E+2,"w":-0.0,"v":0.000001,"u":1e-7,"t":1E400}')],
  ['integers beyond 2^53 and 2^64', b('[9007199254740993,-9223372036854775809,123456789012345678901234567890]')],
  ['duplicate keys: the last wins', b('{"a":1,"b":2,"a":{"c":3}}')],
  ['key order: bytes, not UTF-16 units', b('{"\uffff":1,"😀":2,"é":3,"Z":4,"a":5,"":6,"\ud7ff":7,"\ue000":8}')],
  ['escapes: controls, quote, backslash, slash, DEL', b('{"s":"\\u0000\\u001f\\b\\f\\n\\r\\t\\"\\\\\\/\u007f"}')],
  ['HTML characters and line separators as they are', b('["<script>&amp;</script>","\u2028\u2029","\\u2028"]')],
  ['surrogate pairs and lone surrogates', b('["\\ud83d\\ude00","\\ud800","\\udc00\\ud800","\\ud800\\u0041","\\ud800\\ud83d\\ude00","\\uDBFF\\uDFFF"]')],
  ['invalid UTF-8: every bad byte is one U+FFFD', raw('["', [0xe2, 0x82], 'A","', [0xed, 0xa0, 0x80], '","', [0xf4, 0x90, 0x80, 0x80], '","', [0xc0, 0xaf], '","', [0xff, 0xfe], '"]')],
  ['invalid UTF-8 in a key', raw('{"k', [0x80], '":1,"k\ufffd":2}')],
  ['whitespace everywhere', b(' \t\r\n{ "a" :\n[ 1 , 2 ]\t, "b" : { } , "c" : [ ] }\n ')],
  ['top-level scalars and nulls', b('[null,true,false,"",0]')],
  ['a UTF-8 byte order mark', raw([0xef, 0xbb, 0xbf], '{"bom":1}')],
  ['deep nesting', b(`${'['.repeat(3000)}1${']'.repeat(3000)}`)],
];

describe('data.json hashed as OPA hashes it', () => {
  it('matches opa sign on every document', async () => {
    const dir = join(tmp.dir, 'docs');
    DOCS.forEach(([, doc], i) => {
      mkdirSync(join(dir, `c${i}`), { recursive: true });
      writeFileSync(join(dir, `c${i}`, 'data.json'), doc);
    });
    execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', join(tmp.dir, 'k.pem')], { stdio: 'pipe' });
    execFileSync(opaBinary(), ['sign', '.', '--bundle', '--signing-key', join(tmp.dir, 'k.pem'), '--signing-alg', 'ES256', '-o', '.'], { cwd: dir, stdio: 'pipe' });
    const jwt = (JSON.parse(readFileSync(join(dir, '.signatures.json'), 'utf8')) as { signatures: string[] }).signatures[0]!;
    const files = (JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as { files: { name: string; hash: string }[] }).files;
    const opa = new Map(files.map((f) => [f.name, f.hash]));
    const ours = await Promise.all(DOCS.map(([, doc], i) => fileDigest(`c${i}/data.json`, doc, 'SHA-256')));
    const mismatches = DOCS.filter((_, i) => ours[i]!.toString('hex') !== opa.get(`c${i}/data.json`)).map(([name]) => name);
    expect(opa.size).toBe(DOCS.length);
    expect(mismatches).toEqual([]);
  });

  it('hashes data.json and .manifest parsed, every other file (even other .json files) byte for byte, with each of OPA\'s algorithms', async () => {
    const content = b('{ "a" : 1 }');
    const sha = (x: string | Buffer, alg = 'sha256'): Buffer => createHash(alg).update(x).digest();
    expect(await fileDigest('a/b/data.json', content, 'SHA-256')).toEqual(sha('{"a":1}'));
    expect(await fileDigest('.manifest', content, 'SHA-256')).toEqual(sha('{"a":1}'));
    expect(await fileDigest('other.json', content, 'SHA-256')).toEqual(sha(content));
    expect(await fileDigest('p/x.rego', content, 'SHA-256')).toEqual(sha(content));
    const algs = { MD5: 'md5', 'SHA-1': 'sha1', 'SHA-224': 'sha224', 'SHA-384': 'sha384', 'SHA-512': 'sha512', 'SHA-512-224': 'sha512-224', 'SHA-512-256': 'sha512-256' };
    for (const [opa, node] of Object.entries(algs)) expect(await fileDigest('policy.wasm', content, opa)).toEqual(sha(content, node));
    await expect(fileDigest('policy.wasm', content, 'SHA3-256')).rejects.toThrow('unsupported hash algorithm "SHA3-256" for policy.wasm');
  });
});

describe('Go JSON reading', () => {
  it('refuses what Go refuses: trailing data (unless told to ignore it), bad escapes, more than 10000 levels', () => {
    expect(() => parseGoJson(b('{} x'))).toThrow(GoJsonError);
    expect(parseGoJson(b('{"a":1} x'), { trailing: 'ignore' })).toEqual(new Map([['a', expect.anything()]]));
    expect(() => parseGoJson(b('"\\x"'))).toThrow('invalid escape');
    expect(() => parseGoJson(b('"\\u12"'))).toThrow('invalid escape');
    expect(() => parseGoJson(b('[01]'))).toThrow(GoJsonError);
    expect(() => parseGoJson(b('"a\nb"'))).toThrow('invalid character in string literal');
    expect(() => parseGoJson(b(`${'['.repeat(10001)}${']'.repeat(10001)}`))).toThrow('exceeded max depth');
    expect(parseGoJson(b(`${'['.repeat(10000)}${']'.repeat(10000)}`))).toBeInstanceOf(Array);
  });

  it('writes strings as Go\'s encoder with SetEscapeHTML(false)', () => {
    expect(encodeGoString('a"b\\c\u0001\b\f\n\r\t\u2028\u2029<>&\u007fé😀')).toBe('"a\\"b\\\\c\\u0001\\b\\f\\n\\r\\t\\u2028\\u2029<>&\u007fé😀"');
  });
});
