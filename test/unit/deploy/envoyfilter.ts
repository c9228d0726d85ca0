// Applies the chart's rate-limit EnvoyFilter to an Envoy bootstrap the way istiod applies it to a
// proxy's listeners: the ratelimit filter right after ext_authz, the descriptors merged into the
// virtual hosts. Istio's outbound cluster for our Service is the bootstrap's `cluster` here.
import type { K8sDoc } from './chart.js';

export type RateLimits = { actions: Record<string, unknown>[] }[];
export interface RateLimitFilter {
  name: string;
  typed_config: {
    '@type': string;
    domain: string;
    stage: number;
    timeout: string;
    failure_mode_deny: boolean;
    rate_limit_service: { transport_api_version: string; grpc_service: { envoy_grpc: { cluster_name: string; authority?: string } } };
  };
}
export interface Patch {
  applyTo: string;
  match: { context: string; listener?: { filterChain: { filter: { name: string; subFilter: { name: string } } } }; routeConfiguration?: unknown };
  patch: { operation: string; value: RateLimitFilter | { rate_limits: RateLimits } };
}
export interface EnvoyFilter extends K8sDoc {
  spec: { workloadSelector: { labels: Record<string, string> }; configPatches: Patch[] };
}
export interface Bootstrap {
  static_resources: {
    listeners: {
      filter_chains: {
        filters: { typed_config: { http_filters: { name: string }[]; route_config: { virtual_hosts: { rate_limits?: RateLimits }[] } } }[];
      }[];
    }[];
  };
}

/** The two patches: [HTTP_FILTER ratelimit, VIRTUAL_HOST descriptors]. */
export function ratelimitPatches(ef: EnvoyFilter): { filter: RateLimitFilter; rateLimits: RateLimits; patches: Patch[] } {
  const [filter, vhost] = ef.spec.configPatches;
  if (filter?.applyTo !== 'HTTP_FILTER' || vhost?.applyTo !== 'VIRTUAL_HOST') throw new Error('expected an HTTP_FILTER and a VIRTUAL_HOST patch');
  return { filter: filter.patch.value as RateLimitFilter, rateLimits: (vhost.patch.value as { rate_limits: RateLimits }).rate_limits, patches: ef.spec.configPatches };
}

/** Every listener: envoy/envoy.yaml's own ratelimit filter replaced by the EnvoyFilter's, after ext_authz. */
export function applyRateLimitFilter(boot: Bootstrap, ef: EnvoyFilter, cluster: string): void {
  const { filter, rateLimits } = ratelimitPatches(ef);
  const rl = structuredClone(filter);
  const authority = rl.typed_config.rate_limit_service.grpc_service.envoy_grpc.authority;
  rl.typed_config.rate_limit_service.grpc_service.envoy_grpc = { cluster_name: cluster, ...(authority ? { authority } : {}) };
  for (const l of boot.static_resources.listeners) {
    const hcm = l.filter_chains[0]!.filters[0]!.typed_config;
    const filters = hcm.http_filters.filter((f) => f.name !== 'envoy.filters.http.ratelimit');
    filters.splice(filters.findIndex((f) => f.name === 'envoy.filters.http.ext_authz') + 1, 0, rl);
    hcm.http_filters = filters;
    for (const vh of hcm.route_config.virtual_hosts) vh.rate_limits = rateLimits;
  }
}
