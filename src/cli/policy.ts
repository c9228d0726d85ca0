// The policy authors' loop, without Envoy:
//   eval --bundle policies/build/bundle.tar.gz --request req.json [--decision-path envoy/authz/allow]
// req.json is a CheckRequest as JSON (field names as in Envoy's proto), or the short form
//   {"method": "GET", "path": "/orders?x=1", "headers": {...}, "body": "...",
//    "identity": {"subject": "alice", "issuer": "...", "roles": [...], "scopes": [...]}}
// Prints the policy's decision and the CheckResponse Envoy would receive.
//   check --bundle policies/build/bundle.tar.gz [--decision-path envoy/authz/allow]
// Loads the bundle exactly as the service does (`make policies` runs it): fails, naming them, on
// built-ins the service cannot provide, a missing entrypoint, or an unreadable bundle.
import { errorMessage } from '../lib/errors.js';
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { Authenticator, SubjectCredential } from '../authn/authenticator.js';
import { CheckPipeline, pipelineOptions } from '../check/pipeline.js';
import { RouteTable } from '../check/routes.js';
import { parseConfig } from '../config/loader.js';
import { toRequestView } from '../envoy/request.js';
import { toCheckResponse } from '../envoy/response.js';
import type { CheckRequest__Output } from '../gen/envoy/service/auth/v3/CheckRequest.js';
import { PolicyAuthorizer } from '../policy/authorizer.js';
import { parseBundle } from '../policy/bundle.js';
import { PolicyEngine } from '../policy/engine.js';

interface ShortForm {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string;
  identity?: { subject: string; issuer?: string; roles?: string[]; scopes?: string[] } | null;
}

function fromShortForm(s: ShortForm): CheckRequest__Output {
  const headers = Object.fromEntries(Object.entries(s.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
  return {
    attributes: {
      request: { http: { method: s.method ?? 'GET', path: s.path ?? '/', host: headers.host ?? 'localhost', headers, ...(s.body !== undefined ? { body: s.body } : {}) } },
    },
  };
}

async function evalCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { bundle: { type: 'string' }, request: { type: 'string' }, 'decision-path': { type: 'string', default: 'envoy/authz/allow' } },
    strict: true,
  });
  if (!values.bundle || !values.request) throw new Error('--bundle and --request are required');
  const raw = JSON.parse(await readFile(values.request, 'utf8')) as ShortForm & { attributes?: unknown };
  const request = raw.attributes !== undefined ? (raw as CheckRequest__Output) : fromShortForm(raw);
  const engine = new PolicyEngine({ decisionPath: values['decision-path'], initialPages: 16, maxPages: 1024 });
  await engine.activate(await parseBundle(await readFile(values.bundle)));
  const id = raw.attributes === undefined ? raw.identity : undefined;
  // The given identity stands in for authentication; everything after it is the real pipeline.
  const given: Authenticator = {
    methods: ['jwt'],
    authenticate: () =>
      Promise.resolve(
        id
          ? ({ kind: 'subject', method: 'jwt', subject: id.subject, issuer: id.issuer ?? 'cli', expiresAt: Number.MAX_SAFE_INTEGER, scopes: id.scopes ?? [], roles: id.roles ?? [], claims: {} } satisfies SubjectCredential)
          : undefined,
      ),
  };
  const cfg = parseConfig('<cli>', 'routes: [{name: cli, match: {path_prefix: /}, public: true}]');
  const pipeline = new CheckPipeline({
    options: pipelineOptions(cfg.authentication),
    routes: new RouteTable(cfg.routes),
    authenticatorsFor: () => [given],
    credentialHeaders: [],
    untrustedHeaders: [],
    policy: { authorizer: new PolicyAuthorizer(engine), dryRun: false },
  });
  const decision = await pipeline.check(toRequestView(request));
  process.stdout.write(
    `${JSON.stringify({ revision: decision.policyRevision, allowed: decision.allowed, policy_decision: decision.policy, check_response: toCheckResponse(decision) }, null, 2)}\n`,
  );
}

async function checkCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { bundle: { type: 'string' }, 'decision-path': { type: 'string', default: 'envoy/authz/allow' } }, strict: true });
  if (!values.bundle) throw new Error('--bundle is required');
  const bundle = await parseBundle(await readFile(values.bundle));
  await new PolicyEngine({ decisionPath: values['decision-path'], initialPages: 16, maxPages: 1024 }).activate(bundle);
  process.stdout.write(`${values.bundle}: loads (revision ${bundle.revision || 'none'})\n`);
}

const USAGE = `usage: node dist/src/cli/policy.js eval --bundle FILE --request FILE [--decision-path P]
       node dist/src/cli/policy.js check --bundle FILE [--decision-path P]

  eval   evaluates a bundle (opa build -t wasm) on one request, without Envoy, and prints the
         policy's decision and the CheckResponse Envoy would receive
           --bundle FILE          bundle.tar.gz (e.g. policies/build/bundle.tar.gz)
           --request FILE         a CheckRequest as JSON (Envoy's field names), or the short form
                                  {"method", "path", "headers", "body", "identity": {...}}
           --decision-path P      the rule to evaluate (default envoy/authz/allow)
  check  loads a bundle as the service does; fails on built-ins the service does not implement
  --help this text
`;

async function run([command, ...rest]: string[]): Promise<void> {
  if (command === undefined || command === '--help' || command === '-h' || command === 'help' || rest.includes('--help')) {
    process.stdout.write(USAGE);
    return;
  }
  if (command === 'eval') return evalCommand(rest);
  if (command === 'check') return checkCommand(rest);
  throw new Error(`unknown command ${JSON.stringify(command)}\n${USAGE}`);
}

run(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`${errorMessage(err)}\n`);
  process.exitCode = 1;
});
