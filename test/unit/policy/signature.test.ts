// Signed bundles are accepted exactly when OPA accepts them. Every archive here is signed by the
// real OPA CLI (opa build --signing-key, or opa sign for layouts opa build does not write), some
// then repacked or edited; each is checked by our parseBundle and by `opa build -b <archive>
// --verification-key` (OPA's own verifier), and both verdicts must be the expected one.
import { execFileSync, spawnSync } from 'node:child_process';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { gunzipSync, gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import type { PolicyConfig } from '../../../src/config/schema.js';
import type { ConfigError } from '../../../src/lib/errors.js';
import { parseBundle, type BundleVerification } from '../../../src/policy/bundle.js';
import { loadVerification } from '../../../src/policy/source.js';
import { opaBinary } from '../../helpers/opa.js';
import { tempDir } from '../../helpers/tmp.js';

const tmp = tempDir();
const OPA = opaBinary();
const REGO = 'package p\nimport rego.v1\nallow if data.acme.on == true\n';
const LONG = `deep/${'x'.repeat(130)}.rego`; // one 135-char name: Go's tar writer needs PAX for it

type Files = Record<string, string | Buffer>;
interface Key {
  readonly pem: string;
  readonly pub: string;
  readonly alg: string;
}
let es: Key;
let es2: Key;
let rs: Key;
let ps: Key;
let hs: Key;
let n = 0;

function openssl(name: string, alg: string, args: string[]): Key {
  const pem = join(tmp.dir, `${name}.pem`);
  const pub = join(tmp.dir, `${name}.pub`);
  execFileSync('openssl', ['genpkey', ...args, '-out', pem], { stdio: 'pipe' });
  execFileSync('openssl', ['pkey', '-in', pem, '-pubout', '-out', pub], { stdio: 'pipe' });
  return { pem, pub, alg };
}

function writeTree(dir: string, files: Files): void {
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
}

/** `opa build -b -t wasm` of a source bundle directory, signed. */
function opaBuild(files: Files, key: Key, extra: string[] = []): string {
  const src = join(tmp.dir, `src-${++n}`);
  writeTree(src, { 'p/policy.rego': REGO, ...files });
  const out = join(tmp.dir, `built-${n}.tar.gz`);
  execFileSync(OPA, ['build', '-b', '.', '-t', 'wasm', '-e', 'p/allow', '--signing-key', key.pem, '--signing-alg', key.alg, ...extra, '-o', out], { stdio: 'pipe', cwd: src });
  return out;
}

/** The archive's members in order (names without their leading "/"), unpacked into a fresh directory. */
function unpack(archive: string): { dir: string; names: string[] } {
  const dir = join(tmp.dir, `unpacked-${++n}`);
  mkdirSync(dir);
  execFileSync('tar', ['-xzf', archive, '-C', dir], { stdio: 'pipe' });
  const names = execFileSync('tar', ['-tzf', archive], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
    .split('\n')
    .filter((l) => l !== '' && !l.endsWith('/'))
    .map((l) => l.replace(/^\//, ''));
  return { dir, names };
}

/** Packs `names` from `dir` as OPA writes them ("/name"), in the given tar format. */
function pack(dir: string, names: string[], format: 'gnu' | 'pax' | 'ustar' = 'gnu'): string {
  const out = join(tmp.dir, `packed-${++n}.tar.gz`);
  execFileSync('tar', ['-czPf', out, `--format=${format}`, '--hard-dereference', '-C', dir, '--transform', 's,^,/,', ...names], { stdio: 'pipe' });
  return out;
}

/** An OPA-built archive, edited and repacked (same member order unless the edit adds or removes). */
function edit(archive: string, change: (dir: string, names: string[]) => string[] | void, format: 'gnu' | 'pax' = 'gnu'): string {
  const { dir, names } = unpack(archive);
  return pack(dir, change(dir, names) ?? names, format);
}

/** `opa sign` over a directory as it is (layouts opa build never writes: nested data.json files). */
function opaSign(files: Files, key: Key): string {
  const dir = join(tmp.dir, `signed-${++n}`);
  writeTree(dir, files);
  execFileSync(OPA, ['sign', '.', '--bundle', '--signing-key', key.pem, '--signing-alg', key.alg, '-o', '.'], { stdio: 'pipe', cwd: dir });
  const names = execFileSync('find', ['.', '-type', 'f'], { cwd: dir, encoding: 'utf8' })
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.replace(/^\.\//, ''))
    .sort();
  return pack(dir, names);
}

function opaVerdict(archive: string, key: Key, scope?: string): { ok: boolean; error: string } {
  const r = spawnSync(OPA, ['build', '-b', archive, '--verification-key', key.pub, '--signing-alg', key.alg, ...(scope ? ['--scope', scope] : []), '-o', '/dev/null'], {
    encoding: 'utf8',
  });
  return { ok: r.status === 0, error: r.stderr.trim() };
}

async function ourVerdict(archive: string, key: Key, scope?: string): Promise<{ ok: boolean; error: string }> {
  const material = readFileSync(key.pub);
  const verification: BundleVerification = { key: key.alg.startsWith('HS') ? new Uint8Array(material) : createPublicKey(material), algorithm: key.alg, scope: scope ?? '' };
  return parseBundle(readFileSync(archive), verification).then(
    () => ({ ok: true, error: '' }),
    (err: Error) => ({ ok: false, error: err.message }),
  );
}

const DECIMALS = '{"on":true,"x":1.0,"big":1e2,"small":1E-7,"neg":-0.0,"exp":2.5e+10,"list":[1.50,0.1]}';
const INTEGERS = '{"on":true,"n":12345678901234567890,"m":-9007199254740993,"huge":1234567890123456789012345678901234567890}';
const UNICODE = '{"on":true,"é":"ü","z":1,"😀":"\u2028","\uffff":"<&>","ctl":"\\u0001\\b\\f\\n\\t\\u0000\\u007f","q\\"b":"\\\\/","bad":"\\ufffd"}';

interface Case {
  readonly name: string;
  readonly archive: () => string;
  readonly accepted: boolean;
  readonly key?: () => Key;
  readonly scope?: string;
}

const data = (json: string): Files => ({ 'acme/data.json': json });
const replaceData = (from: string, to: string) => (dir: string) => {
  const p = join(dir, 'data.json');
  const text = readFileSync(p, 'utf8');
  expect(text).toContain(from);
  writeFileSync(p, text.replace(from, to));
};

const CASES: Case[] = [
  { name: 'decimals kept as written (1.0, 1e2, -0.0)', archive: () => opaBuild(data(DECIMALS), es), accepted: true },
  { name: 'integers beyond 2^53', archive: () => opaBuild(data(INTEGERS), es), accepted: true },
  { name: 'unicode keys and strings, escapes, U+2028, control characters', archive: () => opaBuild(data(UNICODE), es), accepted: true },
  { name: 'the same document written differently: whitespace, key order, \\u escapes, a lone surrogate for U+FFFD', archive: () => respelled(Buffer.from('"\\udc00"')), accepted: true },
  { name: 'the same document written differently: an invalid UTF-8 byte for U+FFFD', archive: () => respelled(Buffer.from([0x22, 0xff, 0x22])), accepted: true },
  { name: 'the same document with another character where U+FFFD was', archive: () => respelled(Buffer.from('"\\u00e9"')), accepted: false },
  { name: 'a decimal rewritten as the same number (1.0 -> 1)', archive: () => edit(opaBuild(data(DECIMALS), es), replaceData('"x":1.0', '"x":1')), accepted: false },
  { name: 'a large integer rewritten as its float64 neighbour', archive: () => edit(opaBuild(data(INTEGERS), es), replaceData('12345678901234567890', '12345678901234567000')), accepted: false },
  { name: 'changed data', archive: () => edit(opaBuild(data(DECIMALS), es), replaceData('"on":true', '"on":false')), accepted: false },
  {
    name: 'nested data files (a/b/data.json) and a .manifest, signed by opa sign',
    archive: () => {
      const { dir } = unpack(opaBuild(data('{"on":true}'), es));
      return opaSign(
        {
          'policy.wasm': readFileSync(join(dir, 'policy.wasm')),
          'data.json': '{"top": 1.10}',
          'acme/data.json': '{"on": true}',
          'a/b/data.json': '{"k": [1.0, "é"]}',
          '.manifest': '{"revision":"nested","roots":[""],"wasm":[{"entrypoint":"p/allow","module":"/policy.wasm"}]}',
        },
        es,
      );
    },
    accepted: true,
  },
  {
    name: 'a delta bundle (patch.json), signed by opa sign',
    archive: () => {
      const { dir } = unpack(opaBuild(data('{"on":true}'), es));
      return opaSign(
        {
          'policy.wasm': readFileSync(join(dir, 'policy.wasm')),
          'patch.json': '{"data":[{"op":"upsert","path":"/acme/on","value":true}]}',
          '.manifest': '{"revision":"delta","roots":[""],"wasm":[{"entrypoint":"p/allow","module":"/policy.wasm"}]}',
        },
        es,
      );
    },
    accepted: false,
  },
  { name: '.manifest roots', archive: () => opaBuild({ ...data('{"on":true,"v":0.50}'), '.manifest': '{"roots":["p","acme"],"revision":"roots-1"}' }, es), accepted: true },
  { name: 'a 135-character path (PAX, as opa writes it)', archive: () => opaBuild({ ...data('{"on":true}'), [LONG]: 'package deep\nimport rego.v1\nx := 1\n' }, es), accepted: true },
  {
    name: 'a 135-character path repacked as GNU tar (long name member)',
    archive: () => edit(opaBuild({ ...data('{"on":true}'), [LONG]: 'package deep\nimport rego.v1\nx := 1\n' }, es), () => undefined, 'gnu'),
    accepted: true,
  },
  { name: 'a certificate as the verification key', archive: () => opaBuild(data('{"on":true}'), es), key: () => ({ ...es, pub: certificate(es) }), accepted: true },
  { name: 'RS256', archive: () => opaBuild(data('{"on":true,"x":1.0}'), rs), key: () => rs, accepted: true },
  { name: 'PS256', archive: () => opaBuild(data('{"on":true,"x":1.0}'), ps), key: () => ps, accepted: true },
  { name: 'HS256', archive: () => opaBuild(data('{"on":true,"x":1.0}'), hs), key: () => hs, accepted: true },
  { name: 'HS256 with another secret', archive: () => opaBuild(data('{"on":true}'), hs), key: () => ({ ...hs, pub: tmp.write('hs-other.key', 'a-very-long-hmac-secret-of-at-least-32-bytes!!') }), accepted: false },
  { name: 'a token naming another key id (kid): one configured key verifies it, as --verification-key does', archive: () => opaBuild(data('{"on":true}'), es, ['--verification-key-id', 'other']), accepted: true },
  { name: 'a scope, verified with that scope', archive: () => opaBuild(data('{"on":true}'), es, ['--claims-file', claims({ scope: 'write' })]), scope: 'write', accepted: true },
  { name: 'a scope, verified without one', archive: () => opaBuild(data('{"on":true}'), es, ['--claims-file', claims({ scope: 'write' })]), accepted: false },
  { name: 'no scope, verified with one', archive: () => opaBuild(data('{"on":true}'), es), scope: 'write', accepted: false },
  {
    name: 'an extra file',
    archive: () =>
      edit(opaBuild(data('{"on":true}'), es), (dir, names) => {
        writeFileSync(join(dir, 'extra.txt'), 'x');
        return [...names, 'extra.txt'];
      }),
    accepted: false,
  },
  {
    name: 'a missing file',
    archive: () =>
      edit(opaBuild({ ...data('{"on":true}'), 'p/more.rego': 'package p\nimport rego.v1\ny := 2\n' }, es), (dir, names) => {
        rmSync(join(dir, 'p/more.rego'));
        return names.filter((f) => f !== 'p/more.rego');
      }),
    accepted: false,
  },
  { name: 'names spelled "./x" (not the signed "x")', archive: () => edit(opaBuild(data('{"on":true}'), es), (_dir, names) => names.map((f) => `./${f}`)), accepted: false },
  { name: 'the wrong key', archive: () => opaBuild(data('{"on":true}'), es2), accepted: false },
  {
    name: 'a second .signatures.json',
    archive: () =>
      edit(opaBuild(data('{"on":true}'), es), (dir, names) => {
        mkdirSync(join(dir, 'sub'));
        cpSync(join(dir, '.signatures.json'), join(dir, 'sub/.signatures.json'));
        return [...names, 'sub/.signatures.json'];
      }),
    accepted: false,
  },
  {
    name: 'a signature plugin we do not have',
    archive: () =>
      edit(opaBuild(data('{"on":true}'), es), (dir) => {
        const p = join(dir, '.signatures.json');
        writeFileSync(p, JSON.stringify({ ...(JSON.parse(readFileSync(p, 'utf8')) as object), plugin: 'kms' }));
      }),
    accepted: false,
  },
  { name: 'no .signatures.json', archive: () => edit(opaBuild(data('{"on":true}'), es), (_dir, names) => names.filter((f) => f !== '.signatures.json')), accepted: false },
  { name: 'two tokens in .signatures.json', archive: () => edit(opaBuild(data('{"on":true}'), es), signatures((sc) => ({ signatures: [sc.signatures[0], sc.signatures[0]] }))), accepted: false },
  { name: '"Signatures" spelled in another case (Go matches fields case-insensitively)', archive: () => edit(opaBuild(data('{"on":true}'), es), signatures((sc) => ({ SIGNATURES: sc.signatures }))), accepted: true },
  { name: 'a signed file twice in the archive', archive: () => edit(opaBuild(data('{"on":true}'), es), (_dir, names) => [...names, 'data.json']), accepted: false },
  {
    name: '.signatures.json with trailing bytes after its value (json.Decoder never reads them)',
    archive: () =>
      edit(opaBuild(data('{"on":true}'), es), (dir) => {
        const p = join(dir, '.signatures.json');
        writeFileSync(p, `${readFileSync(p, 'utf8')} trailing garbage`);
      }),
    accepted: true,
  },
];

/** The OPA-built UNICODE bundle with data.json written another way: members reversed, pretty, é and 😀 as \\u escapes, and `bad` (U+FFFD) spelled as given. */
function respelled(bad: Buffer): string {
  return edit(opaBuild(data(UNICODE), es), (dir) => {
    const parsed = JSON.parse(readFileSync(join(dir, 'data.json'), 'utf8')) as { acme: Record<string, unknown> };
    const parts = Object.entries(parsed.acme)
      .reverse()
      .map(([k, v]) => Buffer.concat([Buffer.from(`  ${JSON.stringify(k).replace(/é/g, '\\u00e9').replace(/😀/g, '\\ud83d\\ude00')} : `), k === 'bad' ? bad : Buffer.from(JSON.stringify(v))]));
    const body = parts.flatMap((b, i) => (i > 0 ? [Buffer.from(',\n'), b] : [b]));
    writeFileSync(join(dir, 'data.json'), Buffer.concat([Buffer.from('\n{ "acme" : {\n'), ...body, Buffer.from('\n} }\n')]));
  });
}

/** An edit of .signatures.json. */
function signatures(change: (sc: { signatures: string[] }) => object) {
  return (dir: string): void => {
    const p = join(dir, '.signatures.json');
    writeFileSync(p, JSON.stringify(change(JSON.parse(readFileSync(p, 'utf8')) as { signatures: string[] })));
  };
}

function certificate(key: Key): string {
  const out = join(tmp.dir, `cert-${++n}.pem`);
  execFileSync('openssl', ['req', '-new', '-x509', '-key', key.pem, '-subj', '/CN=bundle-signer', '-days', '1', '-out', out], { stdio: 'pipe' });
  return out;
}

function claims(c: object): string {
  return tmp.write(`claims-${++n}.json`, c);
}

beforeAll(() => {
  es = openssl('es', 'ES256', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']);
  es2 = openssl('es2', 'ES256', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']);
  rs = openssl('rs', 'RS256', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048']);
  ps = { ...rs, alg: 'PS256' };
  // OPA reads an HMAC secret file as it is, trailing newline and all; so does policy.verification.
  const secret = tmp.write('hs.key', 'a-very-long-hmac-secret-of-at-least-32-bytes!!\n');
  hs = { pem: secret, pub: secret, alg: 'HS256' };
});

describe('signed bundles: accepted exactly when OPA accepts them', () => {
  it.each(CASES)('$name', async (c) => {
    const archive = c.archive();
    const key = c.key?.() ?? es;
    const opa = opaVerdict(archive, key, c.scope);
    const ours = await ourVerdict(archive, key, c.scope);
    expect({ opa: opa.ok, ours: ours.ok }, `opa: ${opa.error}\nours: ${ours.error}`).toEqual({ opa: c.accepted, ours: c.accepted });
  });

  it('reads the 135-character path and the nested data files, and loads their data', async () => {
    const archive = opaBuild({ ...data('{"on":true,"x":1.0}'), [LONG]: 'package deep\nimport rego.v1\nx := 1\n' }, es);
    expect(unpack(archive).names).toContain(LONG);
    const bundle = await parseBundle(readFileSync(archive), { key: createPublicKey(readFileSync(es.pub)), algorithm: 'ES256', scope: '' });
    expect(bundle.data).toEqual({ acme: { on: true, x: 1 } });
  });

  it('hashes a large data.json without holding up the event loop (a replayed signature over other data)', async () => {
    const big: Record<string, unknown> = {};
    for (let i = 0; i < 120_000; i++) big[`user-${i}`] = { roles: ['reader', `r${i}`], weight: i * 1.5 };
    const archive = edit(opaBuild(data('{"on":true}'), es), (dir) => writeFileSync(join(dir, 'data.json'), JSON.stringify({ acme: big })));
    const bytes = readFileSync(archive);
    const h = monitorEventLoopDelay({ resolution: 10 });
    h.enable();
    await new Promise((r) => setTimeout(r, 30)); // the histogram records a stall only once the loop turns again
    const t0 = performance.now();
    const verdict = await parseBundle(bytes, { key: createPublicKey(readFileSync(es.pub)), algorithm: 'ES256', scope: '' }).then(
      () => 'accepted',
      (err: Error) => err.message,
    );
    const ms = performance.now() - t0;
    await new Promise((r) => setTimeout(r, 30));
    h.disable();
    expect(verdict).toBe('file data.json does not match its signed hash');
    // Parsed and hashed in 256 KiB steps: the loop waits for one step (and the collector), not for the whole document.
    expect(h.max / 1e6).toBeLessThan(Math.max(150, ms / 3));
  });

  it('policy.verification reads the keys OPA reads (SPKI, PKCS#1, a certificate) and refuses private keys and keys of another type', async () => {
    const pkcs1 = join(tmp.dir, 'rs.pkcs1.pub');
    execFileSync('openssl', ['rsa', '-in', rs.pem, '-RSAPublicKey_out', '-out', pkcs1], { stdio: 'pipe' });
    const load = (file: string, algorithm: string): Promise<string> =>
      loadVerification({ file: join(tmp.dir, 'authz.yaml'), dir: tmp.dir }, { verification: { key_file: file, algorithm, scope: 'w' } } as PolicyConfig).then(
        (v) => `${v?.algorithm} ${(v?.key as KeyObject).asymmetricKeyType} ${v?.scope}`,
        (err: ConfigError) => err.problems[0]!.problem,
      );
    expect(await load(es.pub, 'ES256')).toBe('ES256 ec w');
    expect(await load(pkcs1, 'RS256')).toBe('RS256 rsa w');
    expect(await load(certificate(es), 'ES256')).toBe('ES256 ec w');
    expect(await load(es.pub, 'RS256')).toBe('not a PEM public key usable with RS256');
    expect(await load(es.pem, 'ES256')).toBe('not a PEM public key usable with ES256');
  });

  it('refuses data.yaml, which OPA would load as data and envoy-authz does not read', async () => {
    const archive = edit(opaBuild(data('{"on":true}'), es), (dir, names) => {
      writeFileSync(join(dir, 'data.yaml'), 'on: false\n');
      return [...names, 'data.yaml'];
    });
    expect(await ourVerdict(archive, es)).toEqual({ ok: false, error: 'YAML data files are not supported (/data.yaml): use data.json' });
    await expect(parseBundle(readFileSync(archive))).rejects.toThrow('YAML data files are not supported');
  });

  it('refuses a corrupted tar header checksum, as OPA does', async () => {
    const archive = opaBuild(data('{"on":true}'), es);
    const tar = gunzipSync(readFileSync(archive));
    // The second member's header: a flipped bit in its name, so its checksum no longer adds up.
    const second = 512 + Math.ceil(parseInt(tar.toString('latin1', 124, 135), 8) / 512) * 512;
    tar[second + 10] = tar[second + 10]! ^ 0x01;
    const bad = tmp.write(`corrupt-${++n}.tar.gz`, gzipSync(tar));
    expect(opaVerdict(bad, es).ok).toBe(false);
    const ours = await ourVerdict(bad, es);
    expect(ours).toEqual({ ok: false, error: 'not a readable bundle: not a tar archive (bad header checksum)' });
  });
});
