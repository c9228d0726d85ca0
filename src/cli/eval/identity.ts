// An explicit identity (the short form's `identity`, in input.identity's shape) standing in for
// authentication: turned into the credentials that would have produced it, so that the pipeline's
// own canonicalization, revocation check, policy input and answer all run as for a real caller.
// An identity the service could not produce (e.g. a user authenticated by API key) is refused.
import type { Authenticator, Credential, SubjectCredential, WorkloadCredential } from '../../authn/authenticator.js';
import { UsageError } from './usage-error.js';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function str(o: Record<string, unknown>, k: string, fallback?: string): string | undefined {
  const v = o[k];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'string' || v === '') throw new UsageError(`identity.${k} must be a non-empty string`);
  return v;
}

function list(o: Record<string, unknown>, k: string): string[] {
  const v = o[k];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new UsageError(`identity.${k} must be a list of strings`);
  return v;
}

function oneOf<T extends string>(v: string | undefined, allowed: readonly T[], at: string): T | undefined {
  if (v !== undefined && !(allowed as readonly string[]).includes(v)) throw new UsageError(`identity.${at} must be one of ${allowed.join(', ')} (got ${v})`);
  return v as T | undefined;
}

const KEYS = new Set(['subject', 'issuer', 'kind', 'method', 'scopes', 'roles', 'workload', 'jti', 'expiresAt', 'claims']);
const WORKLOAD_KEYS = new Set(['id', 'method', 'keyId', 'trustDomain']);
/** A given identity without expiresAt: valid for this long (epoch seconds from now). */
const DEFAULT_TTL_S = 3600;
export const DEFAULT_EVAL_ISSUER = 'urn:envoy-authz:eval';

/** The credentials behind a given identity. `serviceAccountIssuer` is the one the service gives every service account. */
export function credentialsFor(given: unknown, serviceAccountIssuer: string, now = Date.now()): { user?: SubjectCredential; workload?: WorkloadCredential } {
  if (!isObject(given)) throw new UsageError('identity must be an object like input.identity: {"subject", "kind", "method", "roles", "scopes", "workload", ...}');
  for (const k of Object.keys(given)) if (!KEYS.has(k)) throw new UsageError(`identity: unknown field ${JSON.stringify(k)}`);
  const subject = str(given, 'subject');
  if (subject === undefined) throw new UsageError('identity.subject is required');
  const expiresAt = given.expiresAt ?? Math.floor(now / 1000) + DEFAULT_TTL_S;
  if (typeof expiresAt !== 'number' || !Number.isInteger(expiresAt)) throw new UsageError('identity.expiresAt must be epoch seconds');
  const w = given.workload;
  if (w !== undefined && w !== null && !isObject(w)) throw new UsageError('identity.workload must be an object {id, method}');
  if (isObject(w)) for (const k of Object.keys(w)) if (!WORKLOAD_KEYS.has(k)) throw new UsageError(`identity.workload: unknown field ${JSON.stringify(k)}`);
  const workloadMethod = isObject(w) ? oneOf(str(w, 'method'), ['api_key', 'mtls'], 'workload.method') : undefined;
  const method = oneOf(str(given, 'method'), ['jwt', 'introspection', 'api_key', 'mtls'], 'method');
  const kind = oneOf(str(given, 'kind'), ['user', 'service_account'], 'kind') ?? (method === 'api_key' || method === 'mtls' ? 'service_account' : 'user');
  const scopes = list(given, 'scopes');
  const roles = list(given, 'roles');

  const workloadOf = (m: 'api_key' | 'mtls', fallbackId: string): WorkloadCredential => {
    const id = isObject(w) ? (str(w, 'id') ?? fallbackId) : fallbackId;
    const keyId = isObject(w) ? str(w, 'keyId') : undefined;
    const trustDomain = isObject(w) ? str(w, 'trustDomain') : undefined;
    return {
      kind: 'workload',
      method: m,
      id,
      serviceAccount: subject,
      scopes: kind === 'service_account' ? scopes : [],
      ...(keyId !== undefined ? { keyId } : {}),
      ...(trustDomain !== undefined ? { trustDomain } : {}),
      ...(kind === 'service_account' ? { expiresAt } : {}),
    };
  };

  if (kind === 'service_account') {
    const m = method ?? workloadMethod ?? 'api_key';
    if (m !== 'api_key' && m !== 'mtls') throw new UsageError(`identity: a service account is authenticated by api_key or mtls, not ${m}`);
    if (workloadMethod !== undefined && workloadMethod !== m) throw new UsageError('identity: workload.method must equal method for a service account');
    const issuer = str(given, 'issuer');
    if (issuer !== undefined && issuer !== serviceAccountIssuer) {
      throw new UsageError(`identity.issuer: the service gives service accounts the issuer ${serviceAccountIssuer} (authentication.service_account_issuer)`);
    }
    if (roles.length > 0 || (isObject(given.claims) && Object.keys(given.claims).length > 0) || given.jti !== undefined) {
      throw new UsageError('identity: a service account has no roles, claims or jti (they come from a user token)');
    }
    return { workload: workloadOf(m, subject) };
  }
  const m = method ?? 'jwt';
  if (m !== 'jwt' && m !== 'introspection') throw new UsageError(`identity: a user is authenticated by jwt or introspection, not ${m} (use kind service_account)`);
  const claims = given.claims ?? {};
  if (!isObject(claims)) throw new UsageError('identity.claims must be an object');
  const jti = str(given, 'jti');
  const user: SubjectCredential = {
    kind: 'subject',
    method: m,
    subject,
    issuer: str(given, 'issuer', DEFAULT_EVAL_ISSUER)!,
    expiresAt,
    scopes,
    roles,
    claims,
    ...(jti !== undefined ? { jti } : {}),
  };
  if (isObject(w) && (workloadMethod === undefined || str(w, 'id') === undefined)) throw new UsageError('identity.workload needs id and method (api_key or mtls) beside a user');
  return { user, ...(workloadMethod !== undefined ? { workload: workloadOf(workloadMethod, '') } : {}) };
}

/** One authenticator for every route that answers with the given identity's credentials. */
export function givenIdentity(given: unknown, serviceAccountIssuer: string): Authenticator[] {
  const { user, workload } = credentialsFor(given, serviceAccountIssuer);
  const found: Credential[] = [...(user ? [user] : []), ...(workload ? [workload] : [])];
  return found.map((c) => ({ methods: [c.method], authenticate: () => Promise.resolve(c) }));
}
