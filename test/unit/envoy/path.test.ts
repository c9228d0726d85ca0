// The path normalizer against Envoy's own examples (test/common/http/path_utility_test.cc:
// normalize_path, then merge_slashes), and the cases where we refuse what Envoy would rewrite.
import { describe, expect, it } from 'vitest';
import { normalizePath } from '../../../src/envoy/path.js';

describe('normalizePath', () => {
  it.each([
    // Envoy: already normal paths do not change.
    ['/xyz', '/xyz'],
    ['/x/y/z', '/x/y/z'],
    // Envoy: NormalizeValidPaths.
    ['/a/b/../c', '/a/c'],
    ['/a/b/./c', '/a/b/c'],
    ['/%c0%af', '/%c0%af'],
    ['/%5c%25', '/%5c%25'],
    ['/a/b/%2E%2E/c', '/a/c'],
    ['/a/b/%2E./c', '/a/c'],
    ['/a/b/%2E/c', '/a/b/c'],
    ['/./a/b', '/a/b'],
    // Envoy: NormalizeCasePath.
    ['/A/B/C', '/A/B/C'],
    ['/a/b/%2e%2e/c', '/a/c'],
    ['/a/%2F%2f/c', '/a/%2F%2f/c'],
    // Envoy: MergeSlashes (after normalization).
    ['/a//b/c/', '/a/b/c/'],
    ['/a', '/a'],
    ['//a/b/c', '/a/b/c'],
    ['/a//b/c', '/a/b/c'],
    ['/a/b/c//', '/a/b/c/'],
    ['/a///b/c', '/a/b/c'],
    ['/a////b/c', '/a/b/c'],
    // Dot segments, then slashes (an empty segment is a segment, as in Envoy).
    ['/a//../b', '/a/b'],
    ['/a/b/..', '/a/'],
    ['/a/.', '/a/'],
    ['/a/..', '/'],
    ['/', '/'],
    ['/.well-known/jwks.json', '/.well-known/jwks.json'],
    ['/a/.../b', '/a/.../b'],
    ['/docs/../orders', '/orders'],
    ['/docs/%2e%2e/orders', '/orders'],
    ['/docs/.%2E/orders', '/orders'],
    // Unreserved escapes decoded; others kept as sent.
    ['/%41%62%7e%2d%5F', '/Ab~-_'],
    ['/a%20b/%3F%23', '/a%20b/%3F%23'],
    ['/%2541', '/%2541'],
    // Characters a path may not carry raw are escaped; sub-delims, ":" and "@" stay.
    ['/caf\u00e9', '/caf%C3%A9'],
    ['/a"b<c>{d}', '/a%22b%3Cc%3E%7Bd%7D'],
    ["/!$&'()*+,;=:@", "/!$&'()*+,;=:@"],
    // No path (CONNECT) and OPTIONS *.
    ['', ''],
    ['*', '*'],
  ])('%s -> %s', (input, expected) => {
    expect(normalizePath(input)).toBe(expected);
    // Normalizing twice changes nothing.
    expect(normalizePath(expected)).toBe(expected);
  });

  it.each([
    // Envoy: InvalidPaths.
    ['/xyz/.%00../abc', 'NUL escape'],
    ['/xyz/%00.%00./abc', 'NUL escape'],
    ['/xyz/AAAAA%%0000/abc', 'bad escape'],
    // Envoy rewrites these (clamps at the root, turns \ into /, prepends /); we refuse them.
    ['/../a/b', '.. above the root'],
    ['/a/b/../../../../c', '.. above the root'],
    ['/docs/../../etc/passwd', '.. above the root'],
    ['/%2e%2e/a', 'encoded .. above the root'],
    ['/a/..\\c', 'backslash'],
    ['/docs\\..\\orders', 'backslash'],
    ['a/b/../c', 'not absolute'],
    ['..', 'not absolute'],
    // Bad escapes and raw characters no request line carries.
    ['/a%', 'truncated escape'],
    ['/a%4', 'truncated escape'],
    ['/a%zz', 'not hex'],
    ['/a b', 'space'],
    ['/a\tb', 'control character'],
    ['/a\u007fb', 'DEL'],
    ['/a\ud800b', 'lone surrogate'],
  ])('refuses %j (%s)', (input) => {
    expect(normalizePath(input)).toBeUndefined();
  });
});
