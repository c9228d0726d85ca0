// io.jwt.* host built-ins against the real `opa eval` on the same calls (one policy, one opa run).
import { constants, createHmac, createPrivateKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { testPki } from '../../../helpers/pki.js';
import { tempDir } from '../../../helpers/tmp.js';
import { evaluateBoth, type BuiltinCase, type Results } from './opa-compare.js';

const b64 = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const q = (s: string): string => JSON.stringify(s);

function signingInput(header: unknown, payload: unknown): string {
  return `${b64(header)}.${b64(payload)}`;
}

/** PS* signatures use a 32-byte salt unless told (jwx's decode_verify wants the hash's length). */
function signed(alg: string, key: KeyObject | string, header: Record<string, unknown>, payload: unknown, saltLength = 32): string {
  const input = signingInput({ alg, ...header }, payload);
  const hash = alg === 'EdDSA' ? null : `sha${alg.slice(2)}`;
  let sig: Buffer;
  if (typeof key === 'string') sig = createHmac(hash!, key).update(input).digest();
  else if (alg.startsWith('PS')) sig = sign(hash, Buffer.from(input), { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength });
  else if (alg.startsWith('ES')) sig = sign(hash, Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  else sig = sign(hash, Buffer.from(input), key);
  return `${input}.${sig.toString('base64url')}`;
}

const tmp = tempDir();
let results: { ours: Results; opa: Results };
const cases: BuiltinCase[] = [];

// The table is built when the file loads (keys and tokens are made synchronously), so that each
// case is its own test.
{
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const rsa2 = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ec384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  const ec521 = generateKeyPairSync('ec', { namedCurve: 'P-521' });
  const ed = generateKeyPairSync('ed25519');
  const pki = testPki(tmp.dir);
  const certPem = pki.leaf('jwt', {});
  const certKey = createPrivateKey(readFileSync(join(tmp.dir, 'leaf-jwt.key')));
  const pem = (k: KeyObject): string => k.export({ type: 'spki', format: 'pem' }) as string;
  const jwk = (k: KeyObject, extra: Record<string, unknown>): Record<string, unknown> => ({ ...k.export({ format: 'jwk' }), ...extra });
  const claims = { sub: 'alice', iss: 'https://issuer.example', aud: 'api', exp: 4_000_000_000, nbf: 1_000_000_000, n: 1.5, list: [1, 'a'] };

  const rs256 = signed('RS256', rsa.privateKey, { typ: 'JWT' }, claims);
  const add = (name: string, expr: string): void => void cases.push({ name, expr });

  // io.jwt.decode
  add('decode', `io.jwt.decode(${q(rs256)})`);
  add('decode_garbage', `io.jwt.decode("garbage")`);
  add('decode_two_parts', `io.jwt.decode("a.b")`);
  add('decode_four_parts', `io.jwt.decode("a.b.c.d")`);
  add('decode_bad_base64', `io.jwt.decode(${q(`${b64({ alg: 'none' })}!.${b64(claims)}.`)})`);
  add('decode_padded', `io.jwt.decode(${q(`${Buffer.from(JSON.stringify({ alg: 'HS256' })).toString('base64').replace(/\+/g, '-').replace(/\//g, '_')}.${b64(claims)}.`)})`);
  add('decode_header_array', `io.jwt.decode(${q(`${b64([1])}.${b64(claims)}.`)})`);
  add('decode_payload_not_json', `io.jwt.decode(${q(`${b64({ alg: 'none' })}.${b64('nope')}.`)})`);
  add('decode_jwe', `io.jwt.decode(${q(`${b64({ alg: 'RSA-OAEP', enc: 'A256GCM' })}.${b64(claims)}.`)})`);
  add('decode_nested', `io.jwt.decode(${q(`${b64({ alg: 'HS256', cty: 'JWT' })}.${b64(`"${rs256}"`)}.c2ln`)})`);
  add('decode_not_string', `io.jwt.decode(data.d.number)`);

  // io.jwt.verify_<alg>
  add('rs256_pem', `io.jwt.verify_rs256(${q(rs256)}, ${q(pem(rsa.publicKey))})`);
  add('rs256_wrong_key', `io.jwt.verify_rs256(${q(rs256)}, ${q(pem(rsa2.publicKey))})`);
  add('rs256_tampered', `io.jwt.verify_rs256(${q(rs256.replace(/\.[^.]+\./, `.${b64({ ...claims, sub: 'mallory' })}.`))}, ${q(pem(rsa.publicKey))})`);
  add('rs256_jwk', `io.jwt.verify_rs256(${q(rs256)}, ${q(JSON.stringify(jwk(rsa.publicKey, {})))})`);
  add('rs256_jwks_kid', `io.jwt.verify_rs256(${q(signed('RS256', rsa.privateKey, { kid: 'k2' }, claims))}, ${q(JSON.stringify({ keys: [jwk(rsa2.publicKey, { kid: 'k1' }), jwk(rsa.publicKey, { kid: 'k2' })] }))})`);
  add('rs256_jwks_kid_wrong', `io.jwt.verify_rs256(${q(signed('RS256', rsa.privateKey, { kid: 'k1' }, claims))}, ${q(JSON.stringify({ keys: [jwk(rsa2.publicKey, { kid: 'k1' }), jwk(rsa.publicKey, { kid: 'k2' })] }))})`);
  add('rs256_jwks_alg_skips', `io.jwt.verify_rs256(${q(rs256)}, ${q(JSON.stringify({ keys: [jwk(rsa.publicKey, { alg: 'RS512' })] }))})`);
  add('rs256_bad_key', `io.jwt.verify_rs256(${q(rs256)}, "not a key")`);
  add('rs256_ec_key', `io.jwt.verify_rs256(${q(rs256)}, ${q(pem(ec256.publicKey))})`);
  add('rs384', `io.jwt.verify_rs384(${q(signed('RS384', rsa.privateKey, {}, claims))}, ${q(pem(rsa.publicKey))})`);
  add('rs512', `io.jwt.verify_rs512(${q(signed('RS512', rsa.privateKey, {}, claims))}, ${q(pem(rsa.publicKey))})`);
  add('rs512_as_256', `io.jwt.verify_rs256(${q(signed('RS512', rsa.privateKey, {}, claims))}, ${q(pem(rsa.publicKey))})`);
  add('ps256', `io.jwt.verify_ps256(${q(signed('PS256', rsa.privateKey, {}, claims))}, ${q(pem(rsa.publicKey))})`);
  add('ps384', `io.jwt.verify_ps384(${q(signed('PS384', rsa.privateKey, {}, claims))}, ${q(pem(rsa.publicKey))})`);
  add('ps512', `io.jwt.verify_ps512(${q(signed('PS512', rsa.privateKey, {}, claims))}, ${q(pem(rsa.publicKey))})`);
  add('ps256_rs_token', `io.jwt.verify_ps256(${q(rs256)}, ${q(pem(rsa.publicKey))})`);
  add('es256', `io.jwt.verify_es256(${q(signed('ES256', ec256.privateKey, {}, claims))}, ${q(pem(ec256.publicKey))})`);
  add('es384', `io.jwt.verify_es384(${q(signed('ES384', ec384.privateKey, {}, claims))}, ${q(pem(ec384.publicKey))})`);
  add('es512', `io.jwt.verify_es512(${q(signed('ES512', ec521.privateKey, {}, claims))}, ${q(JSON.stringify(jwk(ec521.publicKey, {})))})`);
  add('es256_wrong_key', `io.jwt.verify_es256(${q(signed('ES256', ec256.privateKey, {}, claims))}, ${q(pem(ec384.publicKey))})`);
  add('es256_short_sig', `io.jwt.verify_es256(${q(`${signingInput({ alg: 'ES256' }, claims)}.AAAA`)}, ${q(pem(ec256.publicKey))})`);
  add('es256_cert', `io.jwt.verify_es256(${q(signed('ES256', certKey, {}, claims))}, ${q(certPem)})`);
  add('eddsa', `io.jwt.verify_eddsa(${q(signed('EdDSA', ed.privateKey, {}, claims))}, ${q(pem(ed.publicKey))})`);
  add('eddsa_jwk', `io.jwt.verify_eddsa(${q(signed('EdDSA', ed.privateKey, {}, claims))}, ${q(JSON.stringify(jwk(ed.publicKey, { kid: 'e' })))})`);
  add('eddsa_wrong', `io.jwt.verify_eddsa(${q(signed('EdDSA', ed.privateKey, {}, claims).slice(0, -4) + 'AAAA')}, ${q(pem(ed.publicKey))})`);
  add('hs256', `io.jwt.verify_hs256(${q(signed('HS256', 's3cret', {}, claims))}, "s3cret")`);
  add('hs256_wrong', `io.jwt.verify_hs256(${q(signed('HS256', 's3cret', {}, claims))}, "other")`);
  add('hs384', `io.jwt.verify_hs384(${q(signed('HS384', 's3cret', {}, claims))}, "s3cret")`);
  add('hs512', `io.jwt.verify_hs512(${q(signed('HS512', 's3cret', {}, claims))}, "s3cret")`);
  add('hs256_garbage', `io.jwt.verify_hs256("garbage", "s3cret")`);
  add('hs256_bad_header_ignored', `io.jwt.verify_hs256(${q(`${b64('x')}.${b64(claims)}.${createHmac('sha256', 'k').update(`${b64('x')}.${b64(claims)}`).digest('base64url')}`)}, "k")`);

  // io.jwt.decode_verify
  const es = signed('ES256', ec256.privateKey, { kid: 'e1' }, claims);
  const hs = signed('HS256', 's3cret', {}, claims);
  const at = (t: number): string => `"time": ${t}`;
  const T = 2_000_000_000 * 1e9;
  add('dv_cert', `io.jwt.decode_verify(${q(es)}, {"cert": ${q(pem(ec256.publicKey))}, "aud": "api", ${at(T)}})`);
  add('dv_default_time', `io.jwt.decode_verify(${q(es)}, {"cert": ${q(pem(ec256.publicKey))}, "aud": "api"})`);
  add('dv_aud_missing_constraint', `io.jwt.decode_verify(${q(es)}, {"cert": ${q(pem(ec256.publicKey))}, ${at(T)}})`);
  add('dv_aud_wrong', `io.jwt.decode_verify(${q(es)}, {"cert": ${q(pem(ec256.publicKey))}, "aud": "other", ${at(T)}})`);
  add('dv_aud_array', `io.jwt.decode_verify(${q(signed('HS256', 's', {}, { aud: ['x', 'api'] }))}, {"secret": "s", "aud": "api"})`);
  add('dv_no_aud_in_token', `io.jwt.decode_verify(${q(signed('HS256', 's', {}, { sub: 'a' }))}, {"secret": "s", "aud": "api"})`);
  add('dv_iss', `io.jwt.decode_verify(${q(hs)}, {"secret": "s3cret", "aud": "api", "iss": "https://issuer.example", ${at(T)}})`);
  add('dv_iss_wrong', `io.jwt.decode_verify(${q(hs)}, {"secret": "s3cret", "aud": "api", "iss": "https://other", ${at(T)}})`);
  add('dv_expired', `io.jwt.decode_verify(${q(hs)}, {"secret": "s3cret", "aud": "api", ${at(4_000_000_000 * 1e9)}})`);
  add('dv_not_yet', `io.jwt.decode_verify(${q(hs)}, {"secret": "s3cret", "aud": "api", ${at(999_999_999 * 1e9)}})`);
  add('dv_exp_not_number', `io.jwt.decode_verify(${q(signed('HS256', 's', {}, { exp: 'soon' }))}, {"secret": "s"})`);
  add('dv_wrong_secret', `io.jwt.decode_verify(${q(hs)}, {"secret": "nope", "aud": "api"})`);
  add('dv_alg_mismatch', `io.jwt.decode_verify(${q(hs)}, {"secret": "s3cret", "aud": "api", "alg": "HS512"})`);
  add('dv_alg_match', `io.jwt.decode_verify(${q(hs)}, {"secret": "s3cret", "aud": "api", "alg": "HS256", ${at(T)}})`);
  add('dv_unknown_constraint', `io.jwt.decode_verify(${q(hs)}, {"secret": "s3cret", "foo": 1})`);
  add('dv_two_keys', `io.jwt.decode_verify(${q(hs)}, {"secret": "s3cret", "cert": ${q(pem(ec256.publicKey))}})`);
  add('dv_no_key', `io.jwt.decode_verify(${q(hs)}, {"aud": "api"})`);
  add('dv_negative_time', `io.jwt.decode_verify(${q(hs)}, {"secret": "s3cret", "time": -1})`);
  add('dv_garbage', `io.jwt.decode_verify("garbage", {"secret": "s3cret"})`);
  add('dv_jwks_kid', `io.jwt.decode_verify(${q(es)}, {"cert": ${q(JSON.stringify({ keys: [jwk(ec384.publicKey, { kid: 'e0' }), jwk(ec256.publicKey, { kid: 'e1' })] }))}, "aud": "api", ${at(T)}})`);
  add('dv_rs_with_secret', `io.jwt.decode_verify(${q(rs256)}, {"secret": "s3cret"})`);
  add('dv_none', `io.jwt.decode_verify(${q(`${signingInput({ alg: 'none' }, claims)}.`)}, {"secret": "s3cret"})`);
  add('dv_crit_unknown', `io.jwt.decode_verify(${q(signed('HS256', 's', { crit: ['x'], x: 1 }, { sub: 'a' }))}, {"secret": "s"})`);
  add('dv_crit_known', `io.jwt.decode_verify(${q(signed('HS256', 's', { crit: ['kid'], x: 1 }, { sub: 'a' }))}, {"secret": "s"})`);
  add('dv_es512', `io.jwt.decode_verify(${q(signed('ES512', ec521.privateKey, {}, { sub: 'a' }))}, {"cert": ${q(pem(ec521.publicKey))}})`);
  add('dv_ps384_salt32', `io.jwt.decode_verify(${q(signed('PS384', rsa.privateKey, {}, { sub: 'a' }))}, {"cert": ${q(pem(rsa.publicKey))}})`);
  add('dv_ps384', `io.jwt.decode_verify(${q(signed('PS384', rsa.privateKey, {}, { sub: 'a' }, 48))}, {"cert": ${q(pem(rsa.publicKey))}})`);
  add('ps384_salt48', `io.jwt.verify_ps384(${q(signed('PS384', rsa.privateKey, {}, claims, 48))}, ${q(pem(rsa.publicKey))})`);
  add('dv_eddsa', `io.jwt.decode_verify(${q(signed('EdDSA', ed.privateKey, {}, { sub: 'a' }))}, {"cert": ${q(pem(ed.publicKey))}})`);
  add('dv_cert_pem', `io.jwt.decode_verify(${q(signed('ES256', certKey, {}, { sub: 'a' }))}, {"cert": ${q(certPem)}})`);
  const inner = signed('HS256', 's', {}, { sub: 'inner' });
  add('dv_nested', `io.jwt.decode_verify(${q(signed('HS256', 's', { cty: 'jwt' }, inner))}, {"secret": "s"})`);

}

beforeAll(async () => {
  results = await evaluateBoth(tmp.dir, 'jwt', cases, { data: { d: { number: 1 } } });
}, 120_000);

describe('io.jwt.* host built-ins match opa eval', () => {
  it('covers every case', () => {
    expect(Object.keys(results.ours).sort()).toEqual(cases.map((c) => c.name).sort());
  });

  it.each(cases)('$name', (c) => {
    expect(results.ours[c.name]).toEqual(results.opa[c.name]);
  });
});
