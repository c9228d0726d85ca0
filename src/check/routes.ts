// Route table compiled once from config: first match wins; no match means "authentication required".
import type { RouteConfig } from '../config/schema.js';
import type { RequestView } from '../envoy/request.js';
import type { AuthMethod } from '../authn/authenticator.js';

export interface Route {
  readonly name: string;
  readonly public: boolean;
  /** Authentication methods in order; undefined: the global default. */
  readonly methods?: readonly AuthMethod[];
  /** aud of the internal token minted for this route. */
  readonly audience?: string;
  /** Policy stage: undefined means the global default. */
  readonly policy?: 'enforce' | 'dry_run' | 'skip';
  /** Our additions to a policy's answer (routes[].additions); false: opa-envoy-plugin's answer exactly. */
  readonly additions: boolean;
  /** OpenAPI validation: undefined means the mode of the spec that covers the request. */
  readonly openapi?: 'enforce' | 'report' | 'off';
}

/** The route a request falls into when no configured route matches. */
export const DEFAULT_ROUTE: Route = Object.freeze({ name: 'default', public: false, additions: true });

type Matcher = (req: RequestView) => boolean;

function pathMatcher(m: RouteConfig['match']): Matcher {
  if (m.path_exact !== undefined) {
    const exact = m.path_exact;
    return (req) => req.path === exact;
  }
  // Segment-aware prefix: "/public" matches "/public" and "/public/..." but not "/publicity".
  const prefix = (m.path_prefix ?? '/').replace(/\/+$/, '');
  if (prefix === '') return () => true;
  const withSlash = `${prefix}/`;
  return (req) => req.path === prefix || req.path.startsWith(withSlash);
}

function compile(r: RouteConfig): { route: Route; matches: Matcher } {
  const checks: Matcher[] = [pathMatcher(r.match)];
  if (r.match.methods) {
    const methods = new Set(r.match.methods);
    checks.push((req) => methods.has(req.method));
  }
  if (r.match.hosts) {
    const hosts = new Set(r.match.hosts.map((h) => h.toLowerCase()));
    checks.push((req) => hosts.has(req.host));
  }
  const route: Route = Object.freeze({
    name: r.name,
    public: r.public,
    additions: r.additions !== false,
    ...(r.methods ? { methods: r.methods } : {}),
    ...(r.audience !== undefined ? { audience: r.audience } : {}),
    ...(r.policy !== undefined ? { policy: r.policy } : {}),
    ...(r.openapi !== undefined ? { openapi: r.openapi } : {}),
  });
  return { route, matches: (req) => checks.every((c) => c(req)) };
}

export class RouteTable {
  private readonly entries: readonly { route: Route; matches: Matcher }[];
  constructor(routes: readonly RouteConfig[]) {
    this.entries = routes.map(compile);
  }

  get routes(): readonly Route[] {
    return this.entries.map((e) => e.route);
  }

  match(req: RequestView): Route {
    for (const e of this.entries) if (e.matches(req)) return e.route;
    return DEFAULT_ROUTE;
  }
}
