// config/: this schema (every key and default), the loader (every cross-field rule), referenced files.
// The configuration schema: the single source of truth for keys, types and defaults.
// docs/config.schema.json is emitted from it (`make schema`) and a test keeps the two equal.
import { Type, type Static, type TSchema } from '@sinclair/typebox';

const strict = { additionalProperties: false } as const;

/** An object whose every key has a default, so the object itself defaults to `{}` and is filled in. */
function Section<T extends Parameters<typeof Type.Object>[0]>(properties: T, description: string) {
  return Type.Object(properties, { ...strict, default: {}, description });
}

/** A string enum as one JSON Schema `enum` (one clear error instead of one per literal). */
function StringEnum<const T extends readonly string[]>(values: T, options: { default?: T[number]; description?: string } = {}) {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });
}

function Millis(def: number, min: number, max: number, description: string) {
  return Type.Integer({ minimum: min, maximum: max, default: def, description });
}

export const JWS_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
  'HS256',
  'HS384',
  'HS512',
] as const;
export type JwsAlgorithm = (typeof JWS_ALGORITHMS)[number];

const HostPort = Type.String({
  pattern: '^(\\[[0-9a-fA-F:.]+\\]|[A-Za-z0-9.\\-]+):[0-9]{1,5}$',
  description: 'host:port, IPv6 in brackets, e.g. 127.0.0.1:9191 or [::1]:9191',
});

const ServerTls = Type.Object(
  {
    cert_file: Type.String({ minLength: 1, description: 'PEM certificate chain of the listener.' }),
    key_file: Type.String({ minLength: 1, description: 'PEM private key of the listener.' }),
    client_ca_file: Type.Optional(
      Type.String({ minLength: 1, description: 'PEM CA bundle; when set, clients must present a certificate it signed (mTLS).' }),
    ),
  },
  { ...strict, description: 'TLS on the gRPC listener (TLS 1.2 minimum). Absent: plaintext, for loopback or a sidecar.' },
);

const Server = Section(
  {
    address: Type.String({ ...HostPort, default: '127.0.0.1:9191' }),
    tls: Type.Optional(ServerTls),
    max_receive_message_bytes: Type.Integer({
      minimum: 4096,
      maximum: 16 * 1024 * 1024,
      default: 262144,
      description: 'Largest CheckRequest accepted (headers + buffered body + peer certificate).',
    }),
    max_send_message_bytes: Type.Integer({
      minimum: 4096,
      maximum: 16 * 1024 * 1024,
      default: 65536,
      description: 'Largest response sent.',
    }),
    max_concurrent_streams: Type.Integer({
      minimum: 1,
      maximum: 100000,
      default: 1000,
      description: 'HTTP/2 concurrent streams per connection from Envoy; also the bound on calls in progress per connection, where a reset call counts until its handler has stopped.',
    }),
    body_timeout_ms: Millis(
      10000,
      100,
      600000,
      'Longest wait from a call\'s headers to the end of its request body when the caller sets no shorter grpc-timeout; then DEADLINE_EXCEEDED. A stream that never sends its body cannot be held open longer.',
    ),
    http2_preface_timeout_ms: Millis(
      10000,
      100,
      120000,
      'A connection must complete its TLS handshake, send the HTTP/2 preface and SETTINGS, and acknowledge ours within this, or it is closed.',
    ),
    max_connection_age_ms: Millis(
      1800000,
      0,
      86400000,
      'Recycle each connection after this long (±10 % jitter): GOAWAY, so clients reconnect and load spreads over workers and pods. 0: never.',
    ),
    max_connection_age_grace_ms: Millis(30000, 0, 600000, 'After the max-age GOAWAY, calls in flight get this long before the connection is closed.'),
    max_connection_idle_ms: Millis(300000, 0, 86400000, 'Close (GOAWAY) a connection that has had no call in progress for this long. 0: never.'),
    keepalive_time_ms: Millis(60000, 1000, 3600000, 'Ping each connection this often to find dead peers.'),
    keepalive_timeout_ms: Millis(20000, 1000, 600000, 'A ping not answered within this closes the connection.'),
    keepalive_min_ping_interval_ms: Millis(
      5000,
      0,
      3600000,
      'Client pings closer together than this are strikes; the third strike gets GOAWAY ENHANCE_YOUR_CALM "too_many_pings" (grpc-go\'s policy). Pings are allowed without calls in progress (Envoy\'s connection_keepalive).',
    ),
    max_stream_resets_per_second: Type.Integer({
      minimum: 1,
      maximum: 100000,
      default: 200,
      description: 'Streams a client may reset before our answer, per connection per second; more is a rapid-reset attack (CVE-2023-44487): GOAWAY ENHANCE_YOUR_CALM and close.',
    }),
    max_session_memory_mb: Type.Integer({
      minimum: 1,
      maximum: 4096,
      default: 64,
      description: 'node:http2 memory cap per connection (nghttp2 state, queued frames), in MB. Over it, new streams are refused. Node\'s default (10) refuses legitimate calls on a busy multiplexed Envoy connection.',
    }),
    shutdown_drain_ms: Millis(
      0,
      0,
      120000,
      'On SIGTERM: keep serving this long with health NOT_SERVING, so Envoy\'s health checks move traffic away first.',
    ),
    shutdown_grace_ms: Millis(10000, 0, 120000, 'On SIGTERM, after the drain: time for in-flight calls to finish before they are cancelled.'),
    workers: Type.Integer({
      minimum: 0,
      maximum: 256,
      default: 1,
      description:
        'Worker processes sharing the gRPC port (node:cluster), one per core to use them all; 0: one per CPU the process may use (its affinity, capped by its cgroup CPU quota). Above 1, state must be shared: ratelimit.store and revocation.store must be redis. Worker i (from 0) serves the admin API on admin.address\'s port + i.',
    }),
  },
  'The gRPC listener serving envoy.service.auth.v3.Authorization and grpc.health.v1.Health.',
);

const Logging = Section(
  {
    level: StringEnum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
      default: 'info',
      description: 'pino log level.',
    }),
  },
  'JSON logs on stdout. Credentials are always redacted.',
);

const OnError = Section(
  {
    mode: StringEnum(['grpc_error', 'deny'], {
      default: 'grpc_error',
      description:
        'grpc_error: answer with a gRPC error so Envoy\'s failure_mode_allow / status_on_error decide. deny: answer in-band with deny_status.',
    }),
    deny_status: Type.Integer({ minimum: 400, maximum: 599, default: 503, description: 'HTTP status for mode: deny.' }),
  },
  'What to answer when the decision cannot be made (deadline, JWKS unreachable, internal error). Never allow.',
);

const Check = Section(
  {
    deadline_ms: Millis(
      150,
      5,
      10000,
      'Budget for one Check; keep it below Envoy\'s ext_authz timeout (default 200 ms). Envoy\'s own grpc-timeout shortens it further.',
    ),
    on_error: OnError,
    enabled: Type.Boolean({ default: true, description: 'Serve envoy.service.auth.v3.Authorization on the gRPC port.' }),
  },
  'Answering Envoy.',
);

const Jwks = Type.Object(
  {
    url: Type.Optional(Type.String({ minLength: 1, description: 'Remote JWKS (https). Fetched lazily, cached, re-fetched on unknown kid.' })),
    file: Type.Optional(Type.String({ minLength: 1, description: 'Local JWKS file, relative to this config file.' })),
    timeout_ms: Millis(5000, 100, 60000, 'HTTP timeout for one JWKS fetch.'),
    cooldown_ms: Millis(30000, 0, 3600000, 'Minimum time between two fetches (limits refetch on unknown kid).'),
    cache_max_age_ms: Millis(600000, 1000, 86400000, 'How long a fetched JWKS is trusted before it is fetched again.'),
    allow_insecure_http: Type.Boolean({ default: false, description: 'Permit an http:// url (tests, loopback only).' }),
  },
  { ...strict, description: 'Where the issuer\'s public keys are. Exactly one of url or file.' },
);

const ClaimMapping = Section(
  {
    scopes: Type.String({ minLength: 1, default: 'scope', description: 'Claim holding scopes: a space-delimited string or an array.' }),
    roles: Type.String({ minLength: 1, default: 'roles', description: 'Claim holding roles: an array or a space-delimited string.' }),
  },
  'Where the canonical identity\'s scopes and roles come from in this issuer\'s claims.',
);

const Issuer = Type.Object(
  {
    issuer: Type.String({ minLength: 1, description: 'Exact value of the iss claim.' }),
    audiences: Type.Array(Type.String({ minLength: 1 }), {
      minItems: 1,
      uniqueItems: true,
      description: 'The token\'s aud must contain one of these.',
    }),
    algorithms: Type.Array(
      StringEnum(JWS_ALGORITHMS),
      {
        minItems: 1,
        uniqueItems: true,
        default: ['ES256', 'RS256'],
        description: 'Pinned algorithms. Asymmetric by default; HS* only with secret_file and never mixed with asymmetric ones.',
      },
    ),
    jwks: Type.Optional(Jwks),
    secret_file: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'File holding the HMAC secret for HS* (at least 32/48/64 bytes for HS256/384/512; not world-readable).',
      }),
    ),
    clock_tolerance_s: Type.Integer({ minimum: 0, maximum: 60, default: 30, description: 'Allowed clock skew for exp/nbf/iat.' }),
    max_token_age_s: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 31536000, description: 'Reject tokens whose iat is older than this (iat then required).' }),
    ),
    required_typ: Type.Optional(Type.String({ minLength: 1, description: 'Required JOSE typ header, e.g. at+jwt (RFC 9068).' })),
    claims: ClaimMapping,
  },
  strict,
);

export const AUTH_METHOD_NAMES = ['jwt', 'introspection', 'api_key', 'mtls'] as const;
const Methods = (description: string, def?: string[]) =>
  Type.Array(StringEnum(AUTH_METHOD_NAMES), { minItems: 1, uniqueItems: true, ...(def ? { default: def } : {}), description });

const Introspection = Type.Object(
  {
    url: Type.String({ minLength: 1, description: 'RFC 7662 introspection endpoint (https).' }),
    client_id: Type.String({ minLength: 1, description: 'Our client id at the endpoint (HTTP Basic client authentication).' }),
    client_secret_file: Type.String({ minLength: 1, description: 'File with our client secret (not world-readable).' }),
    issuer: Type.Optional(Type.String({ minLength: 1, description: 'When set, the response\'s iss must equal it; it is also the identity\'s issuer.' })),
    audiences: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), { minItems: 1, uniqueItems: true, description: 'When set, the response\'s aud must contain one.' }),
    ),
    timeout_ms: Millis(2000, 50, 30000, 'HTTP timeout of one introspection call; a timeout fails closed.'),
    cache_ttl_s: Type.Integer({ minimum: 0, maximum: 3600, default: 60, description: 'Cache active results this long, never beyond the token\'s exp (0: no cache).' }),
    cache_max_entries: Type.Integer({ minimum: 1, maximum: 10000000, default: 10000, description: 'Bound of the result cache.' }),
    allow_insecure_http: Type.Boolean({ default: false, description: 'Permit an http:// url (tests, loopback only).' }),
    claims: ClaimMapping,
  },
  { ...strict, description: 'Opaque bearer tokens (not JWS-shaped) are checked here.' },
);

const ApiKeyRestrictions = Type.Object(
  {
    hosts: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { uniqueItems: true })),
    paths: Type.Optional(Type.Array(Type.String({ pattern: '^/' }), { uniqueItems: true, description: 'Path prefixes, by whole segments.' })),
    methods: Type.Optional(Type.Array(Type.String({ pattern: '^[A-Z]+$' }), { uniqueItems: true })),
    source_cidrs: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { uniqueItems: true, description: 'e.g. 10.0.0.0/8, 2001:db8::/32' })),
  },
  { ...strict, description: 'A key is only accepted for requests that satisfy every listed restriction.' },
);

export const ApiKeyEntry = Type.Object(
  {
    id: Type.String({ pattern: '^[A-Za-z0-9]{12}$', description: 'The key id (second part of the key).' }),
    digest: Type.String({ pattern: '^(sha256|hmac-sha256):[0-9a-f]{64}$', description: 'Digest of the whole key; the key itself is never stored.' }),
    owner: Type.String({ minLength: 1, description: 'Service account the key belongs to.' }),
    expires_at: Type.String({ minLength: 1, description: 'RFC 3339 time after which the key is refused.' }),
    scopes: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { uniqueItems: true })),
    restrictions: Type.Optional(ApiKeyRestrictions),
    disabled: Type.Optional(Type.Boolean()),
  },
  strict,
);
export const ApiKeyFile = Type.Object({ keys: Type.Array(ApiKeyEntry) }, strict);

const ApiKeys = Type.Object(
  {
    header: Type.String({ minLength: 1, default: 'x-api-key', description: 'Request header carrying the key.' }),
    prefix: Type.String({ pattern: '^[a-z][a-z0-9]{1,15}$', default: 'eak', description: 'Type prefix every key starts with.' }),
    file: Type.Optional(Type.String({ minLength: 1, description: 'YAML/JSON file {keys: [...]} of digest entries (make with `envoy-authz-keys generate`).' })),
    redis: Type.Boolean({ default: false, description: 'Look keys up in Redis (hash <key_prefix>apikeys) instead of / in addition to the file.' }),
    hmac_secret_file: Type.Optional(Type.String({ minLength: 1, description: 'Server-side secret for hmac-sha256 digests (not world-readable).' })),
  },
  { ...strict, description: 'API keys: <prefix>_<id>_<secret>_<crc32>, stored as digests.' },
);

const TrustDomain = Type.Object(
  {
    name: Type.String({ pattern: '^[a-z0-9._-]+$', description: 'SPIFFE trust domain, e.g. example.org.' }),
    allowed_ids: Type.Optional(
      Type.Array(Type.String({ pattern: '^spiffe://' }), { uniqueItems: true, description: 'Exact SPIFFE IDs, or prefixes ending in /*. Absent: every ID of the domain.' }),
    ),
    service_accounts: Type.Optional(
      Type.Record(Type.String(), Type.String({ minLength: 1 }), { description: 'SPIFFE ID -> service account name. Default: the SPIFFE ID itself.' }),
    ),
  },
  strict,
);

const Mtls = Type.Object(
  {
    trust_domains: Type.Array(TrustDomain, { minItems: 1, description: 'Only workloads of these trust domains are accepted.' }),
    trust_xfcc: Type.Boolean({
      default: false,
      description: 'Read the identity from x-forwarded-client-cert (set only when a trusted proxy hop sets it). Otherwise a client-sent XFCC is ignored and removed.',
    }),
  },
  { ...strict, description: 'Workload identity from the TLS peer certificate Envoy forwards (X509-SVID rules).' },
);

const Jwt = Section(
  {
    issuers: Type.Array(Issuer, { default: [], description: 'Trusted issuers. The token\'s iss selects one; it is then verified with that issuer pinned.' }),
    cache_max_entries: Type.Integer({
      minimum: 0,
      maximum: 10000000,
      default: 10000,
      description: 'Verified tokens remembered by a SHA-256 of the token (at most 60 s, never past exp, only while the signing key is published). 0: off.',
    }),
  },
  'JWT bearer tokens.',
);

const Authentication = Section(
  {
    header: Type.String({
      minLength: 1,
      pattern: '^[A-Za-z0-9!#$%&\'*+.^_`|~-]+$',
      default: 'authorization',
      description: 'Request header carrying the credential (case-insensitive).',
    }),
    scheme: Type.String({
      pattern: '^[A-Za-z0-9!#$%&\'*+.^_`|~-]*$',
      default: 'Bearer',
      description: 'Auth scheme before the token (case-insensitive). Empty: the whole header value is the token.',
    }),
    max_token_bytes: Type.Integer({
      minimum: 256,
      maximum: 65536,
      default: 8192,
      description: 'Longer tokens are rejected before any parsing.',
    }),
    forbidden_query_params: Type.Array(Type.String({ minLength: 1 }), {
      default: ['access_token', 'id_token', 'api_key', 'apikey'],
      uniqueItems: true,
      description: 'A request carrying any of these query parameters is rejected: credentials in URLs leak into logs.',
    }),
    forward_credential: Type.Boolean({
      default: false,
      description: 'Keep the credential header on the upstream request (default: removed).',
    }),
    upstream_headers: Section(
      {
        subject: Type.String({ minLength: 1, default: 'x-auth-subject', description: 'Carries the verified subject.' }),
        issuer: Type.String({ minLength: 1, default: 'x-auth-issuer', description: 'Carries the verified issuer.' }),
        client: Type.String({ minLength: 1, default: 'x-auth-client', description: 'Carries the calling workload (API-key owner or SPIFFE ID), else the subject.' }),
      },
      'Headers set on the upstream request. Client-sent copies are always removed first.',
    ),
    jwt: Jwt,
    introspection: Type.Optional(Introspection),
    api_keys: Type.Optional(ApiKeys),
    mtls: Type.Optional(Mtls),
    methods: Methods('Methods tried, in order, for routes that do not say otherwise. Subject (jwt, introspection) and workload (api_key, mtls) credentials combine.', ['jwt', 'introspection', 'api_key', 'mtls']),
    brute_force: Section(
      {
        max_failures: Type.Integer({
          minimum: 0,
          maximum: 1000000,
          default: 20,
          description: 'Failed authentications allowed per (source address, claimed subject or API key id) in window_s; then 429 for that pair before any verification. Never counted per claimed identity alone. 0: off.',
        }),
        max_failures_per_address: Type.Integer({
          minimum: 1,
          maximum: 1000000,
          default: 100,
          description: 'Failed authentications allowed per source address in window_s, whatever identities they claim (stuffing across accounts); then 429 for the address.',
        }),
        window_s: Type.Integer({ minimum: 1, maximum: 86400, default: 300, description: 'Counting window.' }),
      },
      'Credential-stuffing protection (REC-API-11-1), counted in the rate-limit store (memory or Redis).',
    ),
    service_account_issuer: Type.String({
      minLength: 1,
      default: 'urn:envoy-authz:service-accounts',
      description: 'Issuer of the canonical identity when a workload has no user (its service account).',
    }),
  },
  'How callers authenticate.',
);

const RouteMatch = Type.Object(
  {
    path_exact: Type.Optional(Type.String({ pattern: '^/', description: 'Path equals this (query ignored).' })),
    path_prefix: Type.Optional(
      Type.String({ pattern: '^/', description: 'Path is this or below it, by whole segments: /public matches /public/x, not /publicity.' }),
    ),
    methods: Type.Optional(Type.Array(Type.String({ pattern: '^[A-Z]+$' }), { minItems: 1, uniqueItems: true })),
    hosts: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), { minItems: 1, uniqueItems: true, description: 'Exact :authority values (port stripped).' }),
    ),
  },
  { ...strict, description: 'All given conditions must hold. Exactly one of path_exact or path_prefix.' },
);

const Route = Type.Object(
  {
    name: Type.String({ minLength: 1, pattern: '^[A-Za-z0-9_.-]+$', description: 'Shown in logs and metrics.' }),
    match: RouteMatch,
    public: Type.Boolean({
      default: false,
      description: 'No credential required. A credential that is present is still verified; an invalid one is rejected.',
    }),
    methods: Type.Optional(Methods('Authentication methods for this route, in order (default: authentication.methods).')),
    audience: Type.Optional(Type.String({ minLength: 1, description: 'aud of the internal token minted for this route.' })),
    policy: Type.Optional(
      StringEnum(['enforce', 'dry_run', 'skip'], { description: 'Policy stage for this route (default: enforce, or dry_run when policy.dry_run).' }),
    ),
    openapi: Type.Optional(
      StringEnum(['enforce', 'report', 'off'], { description: 'OpenAPI validation for this route, overriding the mode of the spec that covers the request (openapi.specs[].mode).' }),
    ),
    additions: Type.Optional(Type.Boolean({
      default: true,
      description:
        'Our additions to the answer of a policy (opa-envoy-plugin format): credential, identity and untrusted headers removed upstream, a uniform body (and content-type, cache-control, www-authenticate) on denials where the policy gives none, our dynamic metadata keys. They never override what the policy set. false: the exact CheckResponse of opa-envoy-plugin.',
    })),
  },
  strict,
);

const SigningKey = Type.Object(
  {
    file: Type.String({ minLength: 1, description: 'Private JWK (ES256 or EdDSA) with kid; must not be world-readable.' }),
    activate_at: Type.Optional(
      Type.String({ minLength: 1, description: 'RFC 3339. Published at once, signs from this time on (rotation with overlap).' }),
    ),
  },
  strict,
);

const Token = Type.Object(
  {
    issuer: Type.String({ minLength: 1, default: 'urn:envoy-authz', description: 'iss of minted tokens.' }),
    lifetime_s: Type.Integer({ minimum: 10, maximum: 3600, default: 300, description: 'Lifetime of minted tokens.' }),
    default_audience: Type.String({ minLength: 1, description: 'aud when neither the route nor context_extensions name one.' }),
    audience_context_key: Type.String({
      minLength: 1,
      default: 'audience',
      description: 'Envoy per-route context_extensions key naming the target service (wins over the route\'s audience).',
    }),
    header: Type.String({ minLength: 1, default: 'authorization', description: 'Upstream request header for the minted token.' }),
    scheme: Type.String({ default: 'Bearer', description: 'Prefix before the token in that header (empty: none).' }),
    signing_keys: Type.Array(SigningKey, { minItems: 1, description: 'Keys, oldest first. The newest active one signs; all are published.' }),
    cache_max_entries: Type.Integer({ minimum: 1, maximum: 10000000, default: 10000, description: 'Bound of the minted-token cache.' }),
    refresh_before_s: Type.Integer({ minimum: 0, maximum: 3600, default: 60, description: 'Mint anew when a cached token has less than this left.' }),
  },
  { ...strict, description: 'The token server: one short-lived internal JWT for the upstream instead of the caller\'s credentials.' },
);

const AdminToken = Type.Object(
  {
    name: Type.String({ minLength: 1, description: 'Who holds it (shown in the audit log).' }),
    sha256: Type.String({ pattern: '^[0-9a-f]{64}$', description: 'Hex SHA-256 of the admin token.' }),
  },
  strict,
);

const Admin = Section(
  {
    address: Type.String({ ...HostPort, default: '127.0.0.1:9192' }),
    tokens: Type.Array(AdminToken, { default: [], description: 'Bearer tokens for the state-changing admin API. None (here and in tokens_file): that API is closed.' }),
    tokens_file: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'A YAML or JSON file with more tokens, a list of {name, sha256} as in tokens (e.g. a mounted Kubernetes Secret; relative to this file). Read at start and on every reload.',
      }),
    ),
  },
  'The admin HTTP listener: /healthz, /readyz, /.well-known/jwks.json, and the revocation API.',
);

const Policy = Type.Object(
  {
    bundle: Type.Object(
      {
        file: Type.Optional(Type.String({ minLength: 1, description: 'bundle.tar.gz on disk (relative to this file); re-read when it changes.' })),
        url: Type.Optional(Type.String({ minLength: 1, description: 'bundle.tar.gz over HTTPS, polled with If-None-Match (ETag).' })),
        poll_interval_ms: Millis(10000, 100, 3600000, 'How often the file is checked / the URL polled.'),
        timeout_ms: Millis(5000, 100, 60000, 'HTTP timeout of one download.'),
        allow_insecure_http: Type.Boolean({ default: false, description: 'Permit an http:// url (tests, loopback only).' }),
        max_bytes: Type.Integer({ minimum: 1024, maximum: 1024 * 1024 * 1024, default: 64 * 1024 * 1024, description: 'Largest bundle.tar.gz read or downloaded (compressed bytes).' }),
        max_uncompressed_bytes: Type.Integer({
          minimum: 1024,
          maximum: 1024 * 1024 * 1024,
          default: 256 * 1024 * 1024,
          description: 'Largest decompressed tar (all members, headers and padding): the most memory one bundle load can take. Enforced as bytes are inflated, off the event loop; a member larger than what is left is refused at its header.',
        }),
      },
      { ...strict, description: 'Where the OPA bundle (built with opa build -t wasm) comes from. Exactly one of file or url.' },
    ),
    decision_path: Type.String({
      pattern: '^[A-Za-z0-9_]+(/[A-Za-z0-9_]+)*$',
      default: 'envoy/authz/allow',
      description: 'The rule whose value is the decision (a wasm entrypoint), as in opa-envoy-plugin.',
    }),
    verification: Type.Optional(
      Type.Object(
        {
          key_file: Type.String({ minLength: 1, description: 'PEM public key (or, for HS*, the secret; not world-readable).' }),
          algorithm: StringEnum(JWS_ALGORITHMS, { description: 'Pinned signature algorithm of .signatures.json.' }),
          scope: Type.String({ default: '', description: 'The scope the signature must name, as opa --scope ("": the signature names none).' }),
        },
        { ...strict, description: 'When set, every bundle must carry a valid .signatures.json; unsigned or tampered bundles are refused.' },
      ),
    ),
    memory_initial_pages: Type.Integer({ minimum: 2, maximum: 65536, default: 16, description: 'Initial wasm memory in 64 KiB pages.' }),
    memory_max_pages: Type.Integer({ minimum: 2, maximum: 65536, default: 1024, description: 'Maximum wasm memory in 64 KiB pages (1024 = 64 MiB).' }),
    dry_run: Type.Boolean({ default: false, description: 'Evaluate and log, but always allow (routes may override).' }),
    skip_request_body_parse: Type.Boolean({
      default: false,
      description: 'As opa-envoy-plugin\'s option of that name: the input has no parsed_body and no truncated_body, and a body is never a parse error.',
    }),
    proto_descriptor: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          "As opa-envoy-plugin's proto-descriptor: a binary FileDescriptorSet (protoc --include_imports --descriptor_set_out). application/grpc request bodies (raw_body: Envoy's pack_as_bytes) of its services become parsed_body, as proto3 JSON.",
      }),
    ),
    input: Section(
      {
        strip_credential_headers: Type.Boolean({
          default: false,
          description:
            'Remove the credential headers (authorization, the API key header, ...) from input.attributes.request.http.headers. false (as opa-envoy-plugin): policies see them, e.g. for io.jwt.decode.',
        }),
      },
      'What the policy input holds beyond opa-envoy-plugin\'s document.',
    ),
    decision_cache: Type.Optional(
      Type.Object(
        {
          key: Type.Array(Type.String({ pattern: '^[A-Za-z0-9_.]+$' }), {
            minItems: 1,
            description: 'Dotted input paths that determine the decision, e.g. attributes.request.http.method, parsed_path, identity.roles.',
          }),
          max_entries: Type.Integer({ minimum: 1, maximum: 1000000, default: 10000 }),
          ttl_ms: Millis(60000, 100, 3600000, 'Longest life of a cached decision.'),
        },
        { ...strict, description: 'Cache decisions by the declared input fields only; emptied whenever the bundle revision changes.' },
      ),
    ),
  },
  { ...strict, description: 'Authorization with OPA Rego compiled to WebAssembly (opa-envoy-plugin compatible input and decisions).' },
);

const DecisionLogs = Type.Object(
  {
    console: Type.Boolean({ default: false, description: 'One line per decision on stdout through the service logger (OPA\'s decision_logs.console).' }),
    file: Type.Optional(
      Type.Object(
        {
          path: Type.String({ minLength: 1, description: 'Appended to, one JSON event per line (relative to this file).' }),
          max_bytes: Type.Integer({ minimum: 4096, maximum: 1024 * 1024 * 1024 * 64, default: 100 * 1024 * 1024, description: 'Rotate before the file would grow past this.' }),
          max_files: Type.Integer({ minimum: 1, maximum: 100, default: 3, description: 'Rotated files kept (path.1 newest ... path.N oldest); older ones are deleted.' }),
          buffer_bytes: Type.Integer({
            minimum: 4096,
            maximum: 1024 * 1024 * 1024,
            default: 8 * 1024 * 1024,
            description: 'Events waiting for the disk; past this the oldest are dropped (counted).',
          }),
        },
        { ...strict, description: 'A local file sink, size-capped and rotated.' },
      ),
    ),
    service: Type.Optional(
      Type.Object(
        {
          url: Type.String({ minLength: 1, description: 'Base URL of the decision-log service (OPA services[].url); events are POSTed to url + resource.' }),
          resource: Type.String({ pattern: '^/', default: '/logs', description: 'Path appended to url (OPA decision_logs.resource).' }),
          token_file: Type.Optional(
            Type.String({ minLength: 1, description: 'File holding a bearer token sent as Authorization: Bearer (OPA credentials.bearer; not world-readable; read at start).' }),
          ),
          timeout_ms: Millis(10000, 100, 300000, 'HTTP timeout of one upload.'),
          allow_insecure_http: Type.Boolean({ default: false, description: 'Permit an http:// url (tests, loopback only).' }),
        },
        { ...strict, description: 'OPA\'s decision-log upload API: batches of events as a gzipped JSON array.' },
      ),
    ),
    reporting: Section(
      {
        min_delay_seconds: Type.Number({ minimum: 0.05, maximum: 86400, default: 300, description: 'Shortest wait between uploads after a success (OPA reporting.min_delay_seconds; fractions allowed).' }),
        max_delay_seconds: Type.Number({ minimum: 0.05, maximum: 86400, default: 600, description: 'Longest wait between uploads, and the cap of the retry backoff (OPA reporting.max_delay_seconds).' }),
        buffer_size_limit_events: Type.Integer({ minimum: 1, maximum: 10000000, default: 10000, description: 'Events kept for upload; when full the oldest is dropped (counted).' }),
        buffer_size_limit_bytes: Type.Integer({
          minimum: 4096,
          maximum: 1024 * 1024 * 1024 * 16,
          default: 64 * 1024 * 1024,
          description: 'Encoded bytes kept for upload; when full the oldest events are dropped (counted). OPA\'s default is unlimited; ours is a bound.',
        }),
        upload_size_limit_bytes: Type.Integer({ minimum: 90, maximum: 4294967296, default: 32768, description: 'Largest gzipped body of one POST (OPA reporting.upload_size_limit_bytes); a larger single event is dropped (counted).' }),
      },
      'When and how much is uploaded to the service.',
    ),
    labels: Type.Record(Type.String({ minLength: 1 }), Type.String(), { default: {}, description: 'Added to every event\'s labels (beside id and version), as OPA\'s top-level labels.' }),
  },
  {
    ...strict,
    description:
      'Decision logs in OPA\'s format (one event per policy evaluation, joined to the audit record by decision_id), masked by the bundle\'s system.log.mask and our redaction. Absent: off.',
  },
);

const RateLimit = Section(
  {
    enabled: Type.Boolean({ default: true, description: 'Serve envoy.service.ratelimit.v3.RateLimitService on the gRPC port.' }),
    files: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description: 'envoyproxy/ratelimit YAML files (relative to this file), one domain each; re-read when they change. None: every request is within limits.',
    }),
    store: StringEnum(['memory', 'redis'], { default: 'memory', description: 'memory: this instance only. redis: shared through the redis section (single node, Sentinel or Cluster).' }),
    algorithm: StringEnum(['token_bucket', 'fixed_window'], {
      default: 'token_bucket',
      description:
        'token_bucket (GCRA, burst = requests_per_unit unless set) or fixed_window (envoyproxy/ratelimit\'s windows; its counting too with count_refused_requests). Quotas always use fixed windows.',
    }),
    count_refused_requests: Type.Boolean({
      default: false,
      description:
        'false: a refused request spends nothing, in any of its descriptors. true: every descriptor counts the request by itself, as envoyproxy/ratelimit does (a fixed-window counter grows by hits_addend whatever the answer; a token bucket is spent when it has room).',
    }),
    near_limit_ratio: Type.Number({
      minimum: 0,
      maximum: 1,
      default: 0.8,
      description: 'Hits past floor(requests_per_unit x this) and within the limit count as near_limit (envoyproxy/ratelimit NEAR_LIMIT_RATIO).',
    }),
    merge_domain_configs: Type.Boolean({
      default: false,
      description: 'One domain in several files: merge their descriptors (a composite key defined twice is still an error), as envoyproxy/ratelimit MERGE_DOMAIN_CONFIG. false: refused.',
    }),
    stats_max_keys: Type.Integer({
      minimum: 0,
      maximum: 100000,
      default: 1000,
      description:
        'Distinct per-descriptor stat keys that carry request values (detailed_metric, value_to_metric) this process labels; later ones are counted under the descriptor\'s key from the files.',
    }),
    failure_mode: StringEnum(['deny', 'allow', 'local'], {
      default: 'local',
      description: 'When Redis fails: deny (everything over limit), allow, or local (in-process buckets until Redis answers).',
    }),
    headers: StringEnum(['draft', 'legacy', 'both', 'none'], {
      default: 'draft',
      description: 'Rate-limit headers: IETF draft RateLimit-Policy/RateLimit, legacy X-RateLimit-*, both, or none. Retry-After is always sent on 429.',
    }),
    memory_max_keys: Type.Integer({ minimum: 100, maximum: 100000000, default: 100000, description: 'Bound of the in-process bucket table.' }),
    max_descriptors: Type.Integer({
      minimum: 1,
      maximum: 1000,
      default: 64,
      description:
        'Descriptors one ShouldRateLimit request may carry; more is refused with INVALID_ARGUMENT before any bucket is touched. Envoy sends one per rate_limits entry whose actions all apply, usually a handful. Keep the answer (one status per descriptor) under server.max_send_message_bytes.',
    }),
    reload_interval_ms: Millis(5000, 100, 3600000, 'How often the files are checked for changes.'),
  },
  'The rate-limit service (drop-in for envoyproxy/ratelimit configs).',
);

const Redis = Type.Object(
  {
    url: Type.String({ minLength: 1, description: 'redis://[user:password@]host:port/db or rediss:// (TLS). For sentinel/cluster: the credentials and TLS to use; host/port come from nodes.' }),
    mode: StringEnum(['standalone', 'sentinel', 'cluster'], { default: 'standalone', description: 'standalone (url), sentinel (nodes are sentinels), or cluster (nodes are seed nodes; rate limits only).' }),
    nodes: Type.Optional(Type.Array(Type.String({ ...HostPort }), { minItems: 1, description: 'Sentinels or cluster seed nodes, host:port.' })),
    sentinel_name: Type.Optional(Type.String({ minLength: 1, description: 'Master name for sentinel mode.' })),
    key_prefix: Type.String({ default: 'envoy-authz:', description: 'Prefix of every key and channel.' }),
    connect_timeout_ms: Millis(2000, 100, 60000, 'Connection timeout.'),
    command_timeout_ms: Millis(100, 10, 60000, 'Timeout of one command; keep it below Envoy\'s ratelimit filter timeout so the failure mode answers first.'),
  },
  { ...strict, description: 'Shared state (revocations, API keys) for all instances.' },
);

const Revocation = Section(
  {
    store: StringEnum(['memory', 'redis'], { default: 'memory', description: 'memory: this instance only. redis: shared, changes reach every instance via pub/sub.' }),
    snapshot_file: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'With store memory: the deny list survives restarts in this file (relative to this config file), rewritten atomically on every change and loaded at start. Without it, a memory deny list is lost on restart.',
      }),
    ),
  },
  'Deny lists by jti, subject, API key id and source CIDR.',
);

const Reload = Section(
  {
    watch: Type.Boolean({
      default: true,
      description: 'Reload when this file or a file it refers to (keys, secrets, JWKS and API key files, admin tokens_file) changes, watching their directories.',
    }),
    poll_interval_ms: Millis(5000, 0, 3600000, 'Also compare those files\' size, mtime and inode this often (where watching does not work). 0: never.'),
    debounce_ms: Millis(250, 0, 60000, 'After a change, wait this long for more changes before reloading (editors and kubelets write several times).'),
  },
  'Applying a changed config without a restart (also on SIGHUP). Restart-only keys: server, admin.address, logging, check.enabled, ratelimit.enabled.',
);

const OpenApiSpec = Type.Object(
  {
    name: Type.String({ minLength: 1, pattern: '^[A-Za-z0-9_.-]+$', description: 'Shown in logs, metrics, the inventory and input.operation.spec.' }),
    file: Type.Optional(Type.String({ minLength: 1, description: 'OpenAPI 3.0/3.1 document (JSON or YAML), relative to this file; $refs to other files are resolved.' })),
    url: Type.Optional(Type.String({ minLength: 1, description: 'The document over https (its $refs fetched the same way). Read at start; not fetched by --check-config.' })),
    hosts: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), { minItems: 1, uniqueItems: true, description: 'Exact :authority values (port stripped) the spec covers. Absent: every host.' }),
    ),
    path_prefix: Type.String({
      pattern: '^(/[^?#]*[^/?#])?$',
      default: '',
      description: 'The path the spec\'s paths are relative to (e.g. /api/v1), by whole segments; requests outside it are not covered. Empty: the root.',
    }),
    mode: StringEnum(['enforce', 'report', 'off'], {
      default: 'enforce',
      description: 'enforce: refuse what does not match (400/404/405/413/415, problem+json). report: allow, log and count. off: the spec is not used. routes[].openapi overrides it per route.',
    }),
    unknown_query_params: StringEnum(['refuse', 'allow'], {
      default: 'refuse',
      description: 'A query parameter the operation does not declare: refused (400), or allowed.',
    }),
  },
  { ...strict, description: 'One API description and the requests it covers. Exactly one of file or url.' },
);

const OpenApi = Type.Object(
  {
    specs: Type.Array(OpenApiSpec, { minItems: 1, description: 'The first spec whose hosts and path_prefix cover a request validates it; a request no spec covers is not validated.' }),
    truncated_body: StringEnum(['refuse', 'headers_only'], {
      default: 'refuse',
      description:
        'A body Envoy cut at with_request_body.max_request_bytes (x-envoy-auth-partial-body) cannot be validated: refuse with 413, or validate the parameters only and let the body through unchecked.',
    }),
    max_spec_bytes: Type.Integer({ minimum: 1024, maximum: 64 * 1024 * 1024, default: 8 * 1024 * 1024, description: 'Largest spec file read (the bundled document may be up to 4 times this).' }),
    fetch_timeout_ms: Millis(10000, 100, 120000, 'Timeout of reading and resolving one spec (each URL fetch, and the whole $ref resolution).'),
    allow_insecure_http: Type.Boolean({ default: false, description: 'Permit http:// spec URLs (tests, loopback only).' }),
    allow_internal_urls: Type.Boolean({
      default: false,
      description: 'Permit spec URLs and $refs on loopback, private and link-local addresses and internal names (localhost, *.local, *.internal, ...). Off: refused, so a $ref cannot reach internal services (SSRF).',
    }),
    undocumented_max_labels: Type.Integer({
      minimum: 1,
      maximum: 10000,
      default: 200,
      description: 'Distinct method + normalized path labels of undocumented calls counted (inventory and metrics); later ones are counted as "other".',
    }),
  },
  { ...strict, description: 'API schema enforcement: requests validated against OpenAPI documents after authentication and authorization (REC-API-13/14/19), and an endpoint inventory (REC-API-4).' },
);

export const ConfigSchema = Type.Object(
  {
    $schema: Type.Optional(Type.String({ description: 'Path or URL of this schema, for editors.' })),
    server: Server,
    logging: Logging,
    check: Check,
    authentication: Authentication,
    routes: Type.Array(Route, {
      default: [],
      description: 'First match wins. A request that matches no route requires authentication.',
    }),
    token: Type.Optional(Token),
    policy: Type.Optional(Policy),
    decision_logs: Type.Optional(DecisionLogs),
    openapi: Type.Optional(OpenApi),
    ratelimit: RateLimit,
    admin: Admin,
    revocation: Revocation,
    redis: Type.Optional(Redis),
    reload: Reload,
  },
  { ...strict, title: 'envoy-authz configuration' },
);

export type Config = Static<typeof ConfigSchema>;
export type IssuerConfig = Static<typeof Issuer>;
export type JwksConfig = Static<typeof Jwks>;
export type RouteConfig = Static<typeof Route>;
export type ServerConfig = Static<typeof Server>;
export type IntrospectionConfig = Static<typeof Introspection>;
export type ApiKeysConfig = Static<typeof ApiKeys>;
export type ApiKeyEntryConfig = Static<typeof ApiKeyEntry>;
export type MtlsConfig = Static<typeof Mtls>;
export type TokenConfig = Static<typeof Token>;
export const AdminTokenList = Type.Array(AdminToken);
export type AdminTokenConfig = Static<typeof AdminToken>;
export type RedisConfig = Static<typeof Redis>;
export type PolicyConfig = Static<typeof Policy>;
export type OpenApiConfig = Static<typeof OpenApi>;
export type OpenApiSpecConfig = Static<typeof OpenApiSpec>;
export type RateLimitConfig = Static<typeof RateLimit>;
export type DecisionLogsConfig = Static<typeof DecisionLogs>;
export type ClaimMappingConfig = Static<typeof ClaimMapping>;

type JsonSchemaNode = { [key: string]: unknown; properties?: Record<string, JsonSchemaNode>; required?: string[] };

/** Keys with a default may be omitted by the author: editors should not flag them as missing. */
function relaxDefaults(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(relaxDefaults);
  if (node === null || typeof node !== 'object') return node;
  const out: JsonSchemaNode = {};
  for (const [k, v] of Object.entries(node)) out[k] = relaxDefaults(v);
  const props = out.properties;
  if (props && out.required) {
    out.required = out.required.filter((k) => props[k]?.default === undefined);
    if (out.required.length === 0) delete out.required;
  }
  return out;
}

/** The published schema (docs/config.schema.json): plain JSON, draft-07, defaulted keys optional. */
export function schemaJson(schema: TSchema = ConfigSchema): string {
  const plain = JSON.parse(JSON.stringify(schema)) as unknown;
  return `${JSON.stringify({ $schema: 'http://json-schema.org/draft-07/schema#', ...(relaxDefaults(plain) as object) }, null, 2)}\n`;
}
