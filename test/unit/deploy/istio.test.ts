// The Istio manifests cannot be applied here (no cluster); check that they are well-formed and
// agree with each other and with the service's defaults.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/loader.js';
import { ROOT } from '../../helpers/service.js';

interface Provider {
  name: string;
  envoyExtAuthzGrpc: { service: string; port: number; timeout: string; failOpen: boolean; statusOnError: string };
}

const load = async (name: string): Promise<Record<string, unknown>> =>
  parse(await readFile(join(ROOT, 'envoy', 'istio', name), 'utf8')) as Record<string, unknown>;

describe('Istio wiring', () => {
  it('declares a CUSTOM AuthorizationPolicy whose provider exists in meshConfig', async () => {
    const policy = (await load('authorization-policy.yaml')) as { apiVersion: string; kind: string; spec: { action: string; provider: { name: string } } };
    const op = (await load('extension-provider.yaml')) as { spec: { meshConfig: { extensionProviders: Provider[] } } };
    expect(policy.apiVersion).toBe('security.istio.io/v1');
    expect(policy.kind).toBe('AuthorizationPolicy');
    expect(policy.spec.action).toBe('CUSTOM');
    const provider = op.spec.meshConfig.extensionProviders.find((p) => p.name === policy.spec.provider.name);
    expect(provider).toBeDefined();
    expect(provider!.envoyExtAuthzGrpc.failOpen).toBe(false);
  });

  it('points at the service port and waits longer than the service deadline', async () => {
    const op = (await load('extension-provider.yaml')) as { spec: { meshConfig: { extensionProviders: Provider[] } } };
    const grpc = op.spec.meshConfig.extensionProviders[0]!.envoyExtAuthzGrpc;
    const defaults = parseConfig('<defaults>', '');
    expect(String(grpc.port)).toBe(defaults.server.address.split(':').pop());
    expect(parseFloat(grpc.timeout) * 1000).toBeGreaterThan(defaults.check.deadline_ms);
  });
});
