// Istio and prometheus-operator resources against their own CRDs' schemas (istio.io/api's
// customresourcedefinitions.gen.yaml and prometheus-operator's ServiceMonitor CRD, at the versions
// the Makefile pins), as an API server with strict field validation would check them: the
// group/version/kind must be served, and unknown fields are errors (a typo is not silently pruned).
// Not evaluated here: the CRDs' CEL rules (x-kubernetes-validations).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import { parse, parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../../helpers/service.js';
import { istioApiDir, monitoringCrdsFile, render, VALUES_FILES, type K8sDoc } from './chart.js';

type Schema = Record<string, unknown>;
interface Crd {
  kind: string;
  spec: { group: string; names: { kind: string }; versions: { name: string; served: boolean; schema: { openAPIV3Schema: Schema } }[] };
}

/** Kubernetes structural schema -> JSON Schema: objects with declared properties accept no others. */
function strict(s: unknown): unknown {
  if (Array.isArray(s)) return s.map(strict);
  if (s === null || typeof s !== 'object') return s;
  const out: Schema = {};
  for (const [k, v] of Object.entries(s as Schema)) out[k] = k === 'enum' || k === 'default' || k === 'example' ? v : strict(v);
  if (out.properties && out['x-kubernetes-preserve-unknown-fields'] !== true && out.additionalProperties === undefined) out.additionalProperties = false;
  return out;
}

function validators(): Map<string, ValidateFunction> {
  const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false, strictTypes: false, formats: { int32: true, int64: true, double: true, byte: true, 'date-time': true } });
  for (const k of ['x-kubernetes-preserve-unknown-fields', 'x-kubernetes-int-or-string', 'x-kubernetes-validations', 'x-kubernetes-list-type', 'x-kubernetes-list-map-keys', 'x-kubernetes-map-type']) {
    ajv.addKeyword(k);
  }
  const out = new Map<string, ValidateFunction>();
  for (const file of [join(istioApiDir(), 'kubernetes', 'customresourcedefinitions.gen.yaml'), monitoringCrdsFile()]) {
    for (const d of parseAllDocuments(readFileSync(file, 'utf8'))) {
      const crd = d.toJS() as Crd | null;
      if (crd?.kind !== 'CustomResourceDefinition') continue;
      for (const v of crd.spec.versions.filter((x) => x.served)) {
        // Only spec: apiVersion, kind and metadata are the API server's, status is the controller's.
        const spec = (v.schema.openAPIV3Schema.properties as Record<string, Schema>).spec!;
        out.set(`${crd.spec.group}/${v.name}/${crd.spec.names.kind}`, ajv.compile(strict(spec) as Schema));
      }
    }
  }
  return out;
}

const schemas = validators();

function problems(doc: K8sDoc): string[] {
  const validate = schemas.get(`${doc.apiVersion}/${doc.kind}`);
  if (!validate) return [`${doc.apiVersion} ${doc.kind} is not served by the pinned CRDs`];
  if (typeof doc.metadata?.name !== 'string' || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(doc.metadata.name)) return ['metadata.name is not a DNS name'];
  return validate(doc.spec) ? [] : (validate.errors ?? []).map((e) => `spec${e.instancePath} ${e.message ?? ''} ${JSON.stringify(e.params)}`);
}

const isCustom = (d: K8sDoc): boolean => /(^|\.)istio\.io\/|^monitoring\.coreos\.com\//.test(d.apiVersion);

describe('custom resources against their CRDs', () => {
  const rendered = VALUES_FILES.flatMap((v) => render([v]).filter(isCustom).map((doc) => ({ source: v, doc })));

  it('the chart renders every kind it offers in some values file', () => {
    expect(new Set(rendered.map((r) => r.doc.kind))).toEqual(new Set(['AuthorizationPolicy', 'EnvoyFilter', 'ServiceMonitor', 'Telemetry']));
  });

  it.each(rendered.map((r) => [`${r.source}: ${r.doc.kind}/${r.doc.metadata.name}`, r.doc] as const))('%s is valid', (_name, doc) => {
    expect(problems(doc)).toEqual([]);
  });

  it.each(['authorization-policy.yaml', 'ratelimit-envoyfilter.yaml', 'telemetry.yaml'])('envoy/istio/%s is valid', (file) => {
    const docs = parseAllDocuments(readFileSync(join(ROOT, 'envoy', 'istio', file), 'utf8')).map((d) => d.toJS() as K8sDoc);
    for (const doc of docs) expect(problems(doc)).toEqual([]);
  });

  it('finds what the API server would refuse: a misspelt field, a wrong enum, an unserved version', () => {
    const ef = rendered.find((r) => r.doc.kind === 'EnvoyFilter')!.doc;
    const patches = (ef.spec as { configPatches: Record<string, unknown>[] }).configPatches;
    const typo = { ...ef, spec: { ...ef.spec, configPatches: [{ ...patches[0], aplyTo: 'HTTP_FILTER' }] } };
    expect(problems(typo).join()).toMatch(/additional properties.*aplyTo/);
    const context = structuredClone(ef);
    ((context.spec as { configPatches: { match: { context: string } }[] }).configPatches[0]!.match.context = 'SIDECAR_INBOUNDS');
    expect(problems(context).join()).toMatch(/allowedValues/);
    expect(problems({ ...ef, apiVersion: 'networking.istio.io/v1beta9' })).toEqual(['networking.istio.io/v1beta9 EnvoyFilter is not served by the pinned CRDs']);
    const sm = rendered.find((r) => r.doc.kind === 'ServiceMonitor')!.doc;
    expect(problems({ ...sm, spec: { ...sm.spec, endpoint: [] } }).join()).toMatch(/endpoint/);
  });

  it('envoy/istio/extension-provider.yaml names the chart\'s Service and provider', () => {
    const op = parse(readFileSync(join(ROOT, 'envoy', 'istio', 'extension-provider.yaml'), 'utf8')) as {
      spec: { meshConfig: { extensionProviders: { name: string; envoyExtAuthzGrpc: { service: string; port: number } }[] } };
    };
    const provider = op.spec.meshConfig.extensionProviders[0]!;
    const docs = render(['envoy/istio/values.yaml']);
    const svc = docs.find((d) => d.kind === 'Service')!;
    expect(provider.envoyExtAuthzGrpc.service).toBe(`${svc.metadata.name}.${svc.metadata.namespace}.svc.cluster.local`);
    const ap = docs.find((d) => d.kind === 'AuthorizationPolicy')!;
    expect((ap.spec as { provider: { name: string } }).provider.name).toBe(provider.name);
    // The tracing Telemetry names the OpenTelemetry provider registered beside it.
    const tracing = op.spec.meshConfig.extensionProviders.find((p) => 'opentelemetry' in p)!;
    const telemetry = docs.find((d) => d.kind === 'Telemetry')!;
    expect((telemetry.spec as { tracing: { providers: { name: string }[] }[] }).tracing[0]!.providers[0]!.name).toBe(tracing.name);
  });
});
