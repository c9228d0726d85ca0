// Inputs shared by us and the peers: the same keys, tokens, Rego rule and data, so each side
// does the same work (verify a JWT, evaluate RBAC) on the same request.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { opaBinary } from '../../test/helpers/opa.js';
import { jwks, makeKey, signToken, type TestKey } from '../../test/helpers/keys.js';
import { ROOT } from './tools.js';

export const ISSUER = 'https://issuer.bench.invalid';
export const AUDIENCE = 'bench-api';
export type Alg = 'RS256' | 'ES256';

export interface CheckFixtures {
  keys: Record<Alg, TestKey>;
  jwksJson: string;
  /** Distinct tokens per algorithm and outcome (role reader: allowed; role guest: denied). */
  tokens: Record<Alg, Record<'allow' | 'deny', string[]>>;
}

/** RBAC data with `roles` roles; reader may GET /orders, guest has no grant for it. */
export function rbacData(roles: number): { rbac: { roles: Record<string, { method: string; path_prefix: string }[]> } } {
  const table: Record<string, { method: string; path_prefix: string }[]> = {
    reader: [{ method: 'GET', path_prefix: '/orders' }],
    guest: [{ method: 'GET', path_prefix: '/public' }],
  };
  for (let i = 0; i < roles - 2; i++) table[`role-${i}`] = [{ method: 'GET', path_prefix: `/r${i}` }, { method: 'POST', path_prefix: `/r${i}/items` }];
  return { rbac: { roles: table } };
}

export async function checkFixtures(tokensPerKind: number): Promise<CheckFixtures> {
  const keys = { RS256: await makeKey('RS256', 'bench-rs256'), ES256: await makeKey('ES256', 'bench-es256') };
  const tokens = { RS256: { allow: [] as string[], deny: [] as string[] }, ES256: { allow: [] as string[], deny: [] as string[] } };
  for (const alg of ['RS256', 'ES256'] as const) {
    for (let i = 0; i < tokensPerKind; i++) {
      for (const outcome of ['allow', 'deny'] as const) {
        tokens[alg][outcome].push(
          await signToken(keys[alg], { iss: ISSUER, aud: AUDIENCE, sub: `user-${i}`, expIn: 3600, claims: { roles: [outcome === 'allow' ? 'reader' : 'guest'] } }),
        );
      }
    }
  }
  return { keys, jwksJson: JSON.stringify(jwks(keys.RS256, keys.ES256)), tokens };
}

/** The CheckRequest Envoy sends for `GET /orders/42` with this bearer token. */
export function checkRequest(token: string, i = 0): unknown {
  return {
    attributes: {
      source: { address: { socket_address: { address: '127.0.0.1', port_value: 40000 + (i % 20000) } } },
      destination: { address: { socket_address: { address: '127.0.0.1', port_value: 8080 } } },
      request: {
        http: {
          id: `req-${i}`,
          method: 'GET',
          path: '/orders/42?view=full',
          host: 'api.bench.invalid',
          scheme: 'http',
          protocol: 'HTTP/1.1',
          headers: {
            ':authority': 'api.bench.invalid',
            ':method': 'GET',
            ':path': '/orders/42?view=full',
            ':scheme': 'http',
            accept: 'application/json',
            authorization: `Bearer ${token}`,
            'user-agent': 'bench/1.0',
            'x-forwarded-proto': 'http',
            'x-request-id': `8c2f1f9e-0000-4000-8000-${String(i).padStart(12, '0')}`,
          },
        },
      },
    },
  };
}

/** Our bundle (wasm) in `dir`/ours.tar.gz and the peer's policy directory `dir`/peer. */
export function buildPolicies(dir: string, f: CheckFixtures, roles: number): { bundle: string; peerDir: string } {
  const data = rbacData(roles);
  const src = join(dir, `ours-src-${roles}`);
  mkdirSync(src, { recursive: true });
  copyFileSync(join(ROOT, 'bench', 'policies', 'ours.rego'), join(src, 'policy.rego'));
  writeFileSync(join(src, 'data.json'), JSON.stringify(data));
  const bundle = join(dir, `ours-${roles}.tar.gz`);
  execFileSync(opaBinary(), ['build', '-b', '-t', 'wasm', '-e', 'envoy/authz/allow', '-o', bundle, src], { stdio: 'pipe' });
  const peerDir = join(dir, `peer-${roles}`);
  mkdirSync(peerDir, { recursive: true });
  copyFileSync(join(ROOT, 'bench', 'policies', 'peer.rego'), join(peerDir, 'policy.rego'));
  writeFileSync(join(peerDir, 'data.json'), JSON.stringify({ ...data, jwks: f.jwksJson, issuer: ISSUER, audience: AUDIENCE }));
  return { bundle, peerDir };
}

/** envoy-authz config for the Check scenarios (JWT issuer + wasm policy). */
export function oursCheckConfig(dir: string, f: CheckFixtures, bundle: string, cacheEntries: number): Record<string, unknown> {
  const jwksFile = join(dir, 'jwks.json');
  writeFileSync(jwksFile, f.jwksJson);
  return {
    authentication: {
      jwt: {
        issuers: [{ issuer: ISSUER, audiences: [AUDIENCE], algorithms: ['RS256', 'ES256'], jwks: { file: jwksFile } }],
        cache_max_entries: cacheEntries,
      },
    },
    policy: { bundle: { file: bundle } },
  };
}
