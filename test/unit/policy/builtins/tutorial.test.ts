// opa-envoy-plugin's quick-start policy (quick_start.yaml: io.jwt.decode_verify, time.now_ns,
// glob.match, base64url.decode) runs unchanged: the same decisions as `opa eval` on the same
// inputs, and a malformed token is a denial, not an evaluation failure.
import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildBundle, opaBinary } from '../../../helpers/opa.js';
import { tempDir } from '../../../helpers/tmp.js';
import { parseBundle } from '../../../../src/policy/bundle.js';
import { PolicyEngine } from '../../../../src/policy/engine.js';

const QUICK_START = `package envoy.authz

import input.attributes.request.http as http_request

default allow := false

token := {"valid": valid, "payload": payload} if {
    [_, encoded] := split(http_request.headers.authorization, " ")
    [valid, _, payload] := io.jwt.decode_verify(encoded, {"secret": "secret"})
}

allow if {
    is_token_valid
    action_allowed
}

is_token_valid if {
  token.valid
  now := time.now_ns() / 1000000000
  token.payload.nbf <= now
  now < token.payload.exp
}

action_allowed if {
  http_request.method == "GET"
  token.payload.role == "guest"
  glob.match("/people*", [], http_request.path)
}

action_allowed if {
  http_request.method == "GET"
  token.payload.role == "admin"
  glob.match("/people*", [], http_request.path)
}

action_allowed if {
  http_request.method == "POST"
  token.payload.role == "admin"
  glob.match("/people", [], http_request.path)
  lower(input.parsed_body.firstname) != base64url.decode(token.payload.sub)
}
`;

function hs256(payload: Record<string, unknown>, secret = 'secret'): string {
  const input = `${Buffer.from('{"alg":"HS256","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

const now = Math.floor(Date.now() / 1000);
const claims = (role: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ role, sub: Buffer.from('alice').toString('base64url'), nbf: now - 60, exp: now + 3600, ...extra });
const request = (method: string, path: string, authorization: string, firstname?: string): unknown => ({
  attributes: { request: { http: { method, path, headers: { authorization } } } },
  ...(firstname !== undefined ? { parsed_body: { firstname } } : {}),
});

const INPUTS: Record<string, unknown> = {
  guest_get: request('GET', '/people', `Bearer ${hs256(claims('guest'))}`),
  guest_post: request('POST', '/people', `Bearer ${hs256(claims('guest'))}`, 'Bob'),
  admin_post: request('POST', '/people', `Bearer ${hs256(claims('admin'))}`, 'Bob'),
  admin_post_self: request('POST', '/people', `Bearer ${hs256(claims('admin'))}`, 'Alice'),
  expired: request('GET', '/people', `Bearer ${hs256(claims('guest', { exp: now - 10 }))}`),
  not_yet: request('GET', '/people', `Bearer ${hs256(claims('guest', { nbf: now + 600 }))}`),
  wrong_secret: request('GET', '/people', `Bearer ${hs256(claims('guest'), 'nope')}`),
  garbage_token: request('GET', '/people', 'Bearer garbage'),
  no_token: request('GET', '/people', ''),
};

describe('the opa-envoy-plugin quick-start policy', () => {
  it('decides as opa eval does, and a malformed token is a denial', async () => {
    const tmp = tempDir();
    const engine = new PolicyEngine({ decisionPath: 'envoy/authz/allow', initialPages: 16, maxPages: 1024 });
    await engine.activate(await parseBundle(readFileSync(buildBundle(tmp.dir, 'quick-start', { rego: QUICK_START }))));
    const ours = Object.fromEntries(Object.entries(INPUTS).map(([name, input]) => [name, engine.evaluate(input).result]));

    // opa eval: every input in one run, through `with input as`.
    const src = join(tmp.dir, 'opa-src');
    mkdirSync(src);
    writeFileSync(join(src, 'policy.rego'), QUICK_START);
    writeFileSync(join(src, 'all.rego'), 'package all\nimport rego.v1\nr := {name: d | some name, i in data.inputs; d := data.envoy.authz.allow with input as i}\n');
    writeFileSync(join(src, 'data.json'), JSON.stringify({ inputs: INPUTS }));
    const out = JSON.parse(execFileSync(opaBinary(), ['eval', '-f', 'json', '-d', src, 'data.all.r'], { encoding: 'utf8' })) as { result: { expressions: { value: unknown }[] }[] };
    const opa = out.result[0]!.expressions[0]!.value;

    expect(ours).toEqual(opa);
    expect(ours).toEqual({
      guest_get: true,
      guest_post: false,
      admin_post: true,
      admin_post_self: false,
      expired: false,
      not_yet: false,
      wrong_secret: false,
      garbage_token: false,
      no_token: false,
    });
  });
});
