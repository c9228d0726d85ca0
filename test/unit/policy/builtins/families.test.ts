// crypto.*, semver.*, units.*, net.cidr_*, uuid.*, urlquery.*/hex.*, strings.* host built-ins against the real `opa eval`:
// one table per family, all in one policy and one opa run.
import { beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../../../helpers/tmp.js';
import { evaluateBoth, type BuiltinCase, type Results } from './opa-compare.js';

const q = (s: string): string => JSON.stringify(s);
const table = (prefix: string, rows: string[]): BuiltinCase[] => rows.map((expr, i) => ({ name: `${prefix}_${i}`, expr }));

const families: Record<string, BuiltinCase[]> = {
  crypto: table('crypto', [
    ...['', 'hello', 'héllo ✓', 'a'.repeat(1000)].flatMap((s) => [`crypto.md5(${q(s)})`, `crypto.sha1(${q(s)})`, `crypto.sha256(${q(s)})`]),
    ...['md5', 'sha1', 'sha256', 'sha512'].flatMap((h) => [`crypto.hmac.${h}("message", "key")`, `crypto.hmac.${h}("", "")`, `crypto.hmac.${h}("ünïcode", "kéy")`]),
    'crypto.hmac.equal("abc", "abc")',
    'crypto.hmac.equal("abc", "abd")',
    'crypto.hmac.equal("abc", "abcd")',
    'crypto.hmac.equal("", "")',
    'crypto.sha256(data.d.number)',
  ]),
  semver: table('semver', [
    ...[
      ['1.2.3', '1.2.4'],
      ['1.2.3', '1.2.3'],
      ['2.0.0', '1.99.99'],
      ['v1.2.3', '1.2.3'],
      ['1.0.0-alpha', '1.0.0'],
      ['1.0.0-alpha', '1.0.0-alpha.1'],
      ['1.0.0-alpha.1', '1.0.0-alpha.beta'],
      ['1.0.0-beta.2', '1.0.0-beta.11'],
      ['1.0.0-rc.1', '1.0.0-beta.11'],
      ['1.0.0+build.1', '1.0.0+build.2'],
      ['1.0.0-1', '1.0.0-a'],
      ['1.2', '1.2.3'],
      ['01.2.3', '1.2.3'],
      ['1.2.3-01', '1.2.3'],
      ['1.2.3-', '1.2.3'],
      ['1.2.3+', '1.2.3'],
      ['1.2.3-a..b', '1.2.3'],
      ['1.2.3', 'x'],
      ['9223372036854775808.0.0', '1.0.0'],
    ].map(([a, b]) => `semver.compare(${q(a!)}, ${q(b!)})`),
    ...['1.2.3', 'v1.2.3', '1.2.3-alpha+meta', '1.2', '', 'vv1.2.3', '1.2.3-0a', '1.2.3-00', '-1.2.3', '1.2.3.4'].map((v) => `semver.is_valid(${q(v)})`),
    'semver.is_valid(data.d.number)',
  ]),
  units: table('units', [
    ...['1', '1.5', '10K', '10k', '10Ki', '10KI', '10ki', '1M', '1Mi', '1m', '2.5m', '1G', '1Gi', '1g', '1T', '1Ti', '1P', '1Pi', '1E', '1Ei', '1e3', '1.5e3K', '"10Ki"', '10 Ki', '', 'Ki', '10X', '10mi', '1.2.3', '-5K', '1e1234567', '0.1', '1/2'].map(
      (v) => `units.parse(${q(v)})`,
    ),
    ...['1', '1KB', '1kb', '1K', '1KiB', '1Ki', '1.5KiB', '1MB', '1mib', '1GB', '1gib', '1tb', '1TiB', '1pb', '1pib', '1eb', '1eib', '0.1kb', '1e3', '12 MB', 'MB', '1XB', '-1.5KiB', '"1kb"', '1.9'].map(
      (v) => `units.parse_bytes(${q(v)})`,
    ),
  ]),
  net: table('net', [
    ...['10.0.0.0/8', '10.0.0.1/32', '192.168.1.0/24', '2001:db8::/32', '::/0', '0.0.0.0/0', '10.0.0.0/33', '10.0.0.0', 'x/8', '10.0.0.0/-1', '010.0.0.0/8', '10.0.0.0/08', '::ffff:10.0.0.0/104', 'fe80::1%eth0/64', '1.2.3.4/ 8'].map(
      (v) => `net.cidr_is_valid(${q(v)})`,
    ),
    'net.cidr_is_valid(data.d.number)',
    ...['192.168.1.0/30', '10.0.0.1/32', '10.0.0.7/29', '2001:db8::/126', '::ffff:10.0.0.0/126', '10.0.0.0/16', 'bad'].map((v) => `net.cidr_expand(${q(v)})`),
    ...[
      ['10.0.0.0/25', '10.0.0.128/25'],
      ['192.0.128.0/24', '192.0.129.0/24', '192.0.130.0/24'],
      ['10.0.0.0/8', '10.1.0.0/16'],
      ['10.1.2.3'],
      ['172.16.5.4', '192.168.3.4'],
      ['10.0.0.1/32', '10.0.0.2/32', '10.0.0.3/32', '10.0.0.4/32'],
      ['2001:db8::/33', '2001:db8:8000::/33'],
      ['2001:db8::1'],
      ['10.0.0.0/24', '2001:db8::/32', '10.0.1.0/24'],
      [],
      ['bad'],
      ['0.0.0.0/1', '128.0.0.0/1'],
      ['10.0.0.0/24', '10.0.0.0/24'],
    ].map((v) => `net.cidr_merge(${JSON.stringify(v)})`),
    'net.cidr_merge({"10.0.0.0/25", "10.0.0.128/25"})',
    'net.cidr_contains_matches("10.0.0.0/8", "10.1.2.3")',
    'net.cidr_contains_matches(["10.0.0.0/8", "192.168.0.0/16"], ["10.1.2.3", "192.168.1.1", "8.8.8.8"])',
    'net.cidr_contains_matches({"a": "10.0.0.0/8", "b": ["192.168.0.0/16", "extra"]}, {"x": "10.1.0.0/16", "y": "192.168.1.1"})',
    'net.cidr_contains_matches(["2001:db8::/32"], ["2001:db8::1", "2001:db8::/48", "10.0.0.1"])',
    'net.cidr_contains_matches("10.0.0.0/8", ["bad"])',
    'net.cidr_contains_matches("10.0.0.0/8", [[]])',
    'net.cidr_contains_matches("10.0.0.0/8", data.d.number)',
    'net.cidr_contains_matches(["10.0.0.0/8", "10.0.0.0/16"], "10.0.0.0/24")',
  ]),
  uuid: table('uuid', [
    ...[
      '00000000-0000-0000-0000-000000000000',
      'c0d0e0f0-1234-4abc-8def-0123456789ab',
      'C0D0E0F0-1234-4ABC-8DEF-0123456789AB',
      '{c0d0e0f0-1234-4abc-8def-0123456789ab}',
      'urn:uuid:c0d0e0f0-1234-4abc-8def-0123456789ab',
      'c0d0e0f012344abc8def0123456789ab',
      '4d8cd2f8-2e5b-11e6-80c9-0800270c1c2a',
      '000003e8-2363-21ef-b200-325096b39f47',
      '000003e8-2363-21ef-b201-335096b39f47',
      'c0d0e0f0-1234-4abc-cdef-0123456789ab',
      'c0d0e0f0-1234-4abc-edef-0123456789ab',
      'c0d0e0f0-1234-4abc-0def-0123456789ab',
      'not-a-uuid',
      'c0d0e0f0-1234-4abc-8def-0123456789ag',
      'c0d0e0f0x1234-4abc-8def-0123456789ab',
    ].map((v) => `uuid.parse(${q(v)})`),
    'count(uuid.rfc4122("a"))',
    'uuid.rfc4122("a") == uuid.rfc4122("a")',
    'uuid.rfc4122("a") == uuid.rfc4122("b")',
    'regex.match("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", uuid.rfc4122("c"))',
  ]),
  urlquery: table('urlquery', [
    ...['', 'a b', 'a+b', 'ä/ö?x=1&y=2', '-_.~!*\'()', 'héllo wörld'].flatMap((v) => [`urlquery.encode(${q(v)})`, `hex.encode(${q(v)})`, `base64url.encode_no_pad(${q(v)})`]),
    ...['a+b', 'a%20b', '%zz', '%4', 'caf%C3%A9', '100%'].map((v) => `urlquery.decode(${q(v)})`),
    ...['a=1&b=2&a=3', 'a=1;b=2', 'x', '=1', '&&a=%41', 'a=%zz', 'k+1=v+1&k%201=w', ''].map((v) => `urlquery.decode_object(${q(v)})`),
    'urlquery.encode_object({"b": "2", "a": ["1", "x y"], "c": set()})',
    'urlquery.encode_object({"a": ["y", "x"]})',
    'urlquery.encode_object({"a": data.d.number})',
    'urlquery.encode_object({})',
    ...['68656c6c6f', '68656C6C6F', '686', 'zz', ''].map((v) => `hex.decode(${q(v)})`),
  ]),
  strings: table('strings', [
    'strings.any_prefix_match("foo/bar", "foo")',
    'strings.any_prefix_match(["a/b", "c/d"], ["x", "c/"])',
    'strings.any_prefix_match({"a/b"}, {"b"})',
    'strings.any_prefix_match("abc", [])',
    'strings.any_suffix_match("foo.example.com", [".example.com", ".test"])',
    'strings.any_suffix_match(["a", "b"], "c")',
    'strings.any_prefix_match(data.d.number, "a")',
    'strings.count("cheese", "e")',
    'strings.count("aaaa", "aa")',
    'strings.count("five", "")',
    'strings.count("héllo", "")',
    'indexof_n("sad saddle", "sad")',
    'indexof_n("aaaa", "aa")',
    'indexof_n("héllo héllo", "llo")',
    'indexof_n("abc", "")',
    'indexof_n("abc", "z")',
  ]),
};

const tmp = tempDir();
let results: { ours: Results; opa: Results };

beforeAll(async () => {
  results = await evaluateBoth(tmp.dir, 'families', Object.values(families).flat(), { data: { d: { number: 1 } } });
}, 120_000);

describe.each(Object.entries(families))('%s host built-ins match opa eval', (_family, cases) => {
  it.each(cases)('$expr', (c) => {
    expect(results.ours[c.name]).toEqual(results.opa[c.name]);
  });
});
