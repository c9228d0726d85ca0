// Drop-in fidelity with opa-envoy-plugin, proven against fixtures recorded from the real plugin
// (test/fixtures/opa-envoy-plugin: corpus.ts, record.ts, README.md). Each recorded CheckRequest is
// replayed through our translator (the policy input, field by field) and through our server with
// the same Rego built to wasm (the CheckResponse, field by field, with the route's additions off);
// a last part shows what our additions add when on, and that they never override the policy.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GrpcBodies } from '../../../src/envoy/grpc-body.js';
import { policyInputBuilder } from '../../../src/envoy/input.js';
import { DescriptorSet } from '../../../src/envoy/protojson.js';
import type { CheckRequest, CheckRequest__Output } from '../../../src/gen/envoy/service/auth/v3/CheckRequest.js';
import type { CheckResponse__Output } from '../../../src/gen/envoy/service/auth/v3/CheckResponse.js';
import { RequestParseError } from '../../../src/lib/errors.js';
import { envoyProtos } from '../../../src/envoy/protos.js';
import { normalizeResponse, type Fixture, type FixtureFile } from '../../fixtures/opa-envoy-plugin/fixture.js';
import { authzClient, type AuthzClient } from '../../helpers/grpc.js';
import { buildBundle } from '../../helpers/opa.js';
import { configYaml, startInProcess } from '../../helpers/service.js';
import { tempDir } from '../../helpers/tmp.js';

const DIR = join(import.meta.dirname, '..', '..', 'fixtures', 'opa-envoy-plugin');
const FILE = JSON.parse(readFileSync(join(DIR, 'fixtures.json'), 'utf8')) as FixtureFile;
const DESCRIPTORS = join(DIR, 'grpc', 'orders.pb');
const DECISIONS = (JSON.parse(readFileSync(join(DIR, 'policy', 'data.json'), 'utf8')) as { fixture: { decisions: Record<string, unknown> } }).fixture.decisions;

/** What the plugin answers a request it cannot parse (its message is Go's error text; ours names the problem). */
const isParseError = (f: Fixture): boolean => 'ok' in f.response && JSON.stringify(f.response.ok).includes('request_parse_error: ');

/** The request exactly as our server receives it: encoded and decoded by the same proto definition. */
function decoded(req: CheckRequest): CheckRequest__Output {
  const m = envoyProtos().envoy.service.auth.v3.Authorization.service.Check;
  return m.requestDeserialize(m.requestSerialize(req));
}

/** The policy sees JSON: compare after a JSON round trip (as the plugin's log and wasm both see it). */
const asJson = (v: unknown): unknown => JSON.parse(JSON.stringify(v)) as unknown;

describe(`opa-envoy-plugin fidelity (fixtures from ${FILE.plugin})`, () => {
  it('has a corpus of at least 60 recorded requests covering inputs, bodies and decisions', () => {
    expect(FILE.fixtures.length).toBeGreaterThanOrEqual(60);
    for (const kind of ['input/', 'path/', 'body/', 'skip/', 'decision/', 'grpc/']) expect(FILE.fixtures.some((f) => f.name.startsWith(kind))).toBe(true);
  });

  describe('the policy input, field by field', () => {
    const plain = policyInputBuilder();
    const skip = policyInputBuilder({ skipBodyParse: true });
    const grpc = policyInputBuilder({ grpcBodies: new GrpcBodies(new DescriptorSet(readFileSync(DESCRIPTORS))) });
    for (const f of FILE.fixtures) {
      it(f.name, () => {
        const build = (): Record<string, unknown> => (f.protoDescriptor ? grpc : f.skipBodyParse ? skip : plain)(decoded(f.request), undefined).value();
        if (isParseError(f)) {
          expect(f.input).toBeNull();
          expect(build).toThrow(RequestParseError);
          return;
        }
        const { identity, ...input } = build();
        expect(identity).toBeNull(); // ours alone: input.identity (null when anonymous)
        expect(asJson(input)).toEqual(f.input);
      });
    }
  });

  describe('the CheckResponse, field by field', () => {
    const tmp = tempDir();
    const services: Awaited<ReturnType<typeof startInProcess>>[] = [];
    const clients: Record<'plain' | 'skip' | 'additions' | 'grpc', AuthzClient> = {} as Record<'plain' | 'skip' | 'additions' | 'grpc', AuthzClient>;

    beforeAll(async () => {
      buildBundle(tmp.dir, 'fixture', {
        rego: readFileSync(join(DIR, 'policy', 'policy.rego'), 'utf8'),
        data: JSON.parse(readFileSync(join(DIR, 'policy', 'data.json'), 'utf8')),
        revision: 'fixture-1',
      });
      const start = async (name: keyof typeof clients, additions: boolean, skipBody: boolean, protoDescriptor?: string): Promise<void> => {
        const svc = await startInProcess(
          tmp.write(
            `${name}.yaml`,
            configYaml({
              server: { address: '127.0.0.1:0' },
              routes: [{ name: 'fidelity', match: { path_prefix: '/' }, public: true, additions }],
              policy: { bundle: { file: 'fixture.tar.gz' }, skip_request_body_parse: skipBody, ...(protoDescriptor ? { proto_descriptor: protoDescriptor } : {}) },
            }),
          ),
        );
        services.push(svc);
        clients[name] = authzClient(svc.address);
      };
      await start('plain', false, false);
      await start('skip', false, true);
      await start('additions', true, false);
      await start('grpc', false, false, DESCRIPTORS);
    });
    afterAll(async () => {
      for (const c of Object.values(clients)) c.close();
      for (const s of services) await s.shutdown();
    });

    const ask = (client: AuthzClient, req: CheckRequest): Promise<{ ok: CheckResponse__Output } | { error: ServiceError }> =>
      client.check(req).then(
        (ok) => ({ ok }),
        (error: unknown) => ({ error: error as ServiceError }),
      );

    for (const f of FILE.fixtures) {
      it(f.name, async () => {
        const ours = await ask(f.protoDescriptor ? clients.grpc : f.skipBodyParse ? clients.skip : clients.plain, f.request);
        if ('error' in f.response) {
          // A decision the plugin refuses is a gRPC error with us too (ours: UNAVAILABLE, so Envoy's
          // failure_mode_allow / status_on_error decides, as for every failure of ours; the plugin: UNKNOWN).
          expect('error' in ours).toBe(true);
          return;
        }
        expect('ok' in ours, 'error' in ours ? ours.error.message : '').toBe(true);
        const got = normalizeResponse((ours as { ok: CheckResponse__Output }).ok) as CheckResponse__Output;
        const want = f.response.ok as CheckResponse__Output;
        if (isParseError(f)) {
          // Same gRPC code, HTTP status and shape; the text after the prefix names the problem in our words.
          expect(got.status?.code).toBe(want.status?.code);
          expect(got.denied_response?.status).toEqual(want.denied_response?.status);
          expect(got.denied_response?.body).toBe(got.status?.message);
          expect(got.denied_response?.body).toMatch(/^request_parse_error: /);
          expect(got.dynamic_metadata).toBe(want.dynamic_metadata);
          return;
        }
        expect(got).toEqual(want);
      });
    }

    describe('with our additions on (the default)', () => {
      const decisionFixtures = FILE.fixtures.filter((f) => f.name.startsWith('decision/') && 'ok' in f.response);
      const names = (l: { header?: { key?: string } | null }[] | undefined): string[] => (l ?? []).map((h) => h.header?.key ?? '');

      for (const f of decisionFixtures) {
        it(`${f.name}: the policy's answer unchanged, ours only beside it`, async () => {
          const res = await ask(clients.additions, f.request);
          expect('ok' in res).toBe(true);
          const got = normalizeResponse((res as { ok: CheckResponse__Output }).ok) as CheckResponse__Output;
          const want = (f.response as { ok: CheckResponse__Output }).ok;
          const policy = DECISIONS[f.name.slice('decision/'.length)] as Record<string, unknown> | boolean | undefined;
          expect(got.status?.code).toBe(want.status?.code);
          // Every dynamic metadata key the policy set keeps its value; decision_id as the plugin's.
          for (const [k, v] of Object.entries(want.dynamic_metadata?.fields ?? {})) expect(got.dynamic_metadata?.fields?.[k]).toEqual(v);
          if (want.denied_response || (got.status?.code ?? 0) !== 0) {
            const d = got.denied_response!;
            expect(d.status).toEqual(want.denied_response?.status ?? { code: 'Forbidden' });
            for (const h of want.denied_response?.headers ?? []) expect(d.headers).toContainEqual(h);
            const added = names(d.headers).filter((n) => !names(want.denied_response?.headers).includes(n));
            expect(added.every((n) => ['content-type', 'cache-control', 'www-authenticate'].includes(n))).toBe(true);
            // No header name twice: ours never duplicate the policy's (www-authenticate was sent twice before).
            expect(new Set(names(d.headers).filter((n) => n !== 'set-cookie' && n !== 'x-a')).size).toBe(names(d.headers).filter((n) => n !== 'set-cookie' && n !== 'x-a').length);
            if (typeof policy === 'object' && typeof policy.body === 'string') expect(d.body ?? '').toBe(policy.body);
            else expect(d.body).toMatch(/^\{"error":/); // the uniform body, only where the policy gives none
            return;
          }
          const ok = got.ok_response!;
          for (const h of want.ok_response?.headers ?? []) expect(ok.headers).toContainEqual(h);
          expect(ok.response_headers_to_add ?? []).toEqual(want.ok_response?.response_headers_to_add ?? []);
          expect(ok.query_parameters_to_set ?? []).toEqual(want.ok_response?.query_parameters_to_set ?? []);
          expect(ok.query_parameters_to_remove ?? []).toEqual(want.ok_response?.query_parameters_to_remove ?? []);
          for (const r of want.ok_response?.headers_to_remove ?? []) expect(ok.headers_to_remove).toContain(r);
          // Ours: the inbound credential is removed, unless the policy sets that header itself.
          const policySetsAuthorization = names(want.ok_response?.headers).includes('authorization');
          expect(ok.headers_to_remove?.includes('authorization')).toBe(!policySetsAuthorization);
          expect(got.dynamic_metadata?.fields?.route).toEqual(want.dynamic_metadata?.fields?.route ?? { stringValue: 'fidelity', kind: 'stringValue' });
          expect(got.dynamic_metadata?.fields?.policy_revision?.stringValue).toBe('fixture-1');
        });
      }
    });
  });
});
