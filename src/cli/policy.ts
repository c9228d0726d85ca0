// The policy authors' loop, without Envoy (docs/policy-authoring.md, "The loop"):
//   eval   one request through the service's own pipeline, built from the service's config
//   build  a policies folder -> a wasm bundle (what `make policies` runs)
// Exit codes: eval 0 allowed, 1 denied, 3 no decision; 2 usage or config error (every command).
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { ConfigError, errorMessage } from '../lib/errors.js';
import { StartupError } from '../server/components.js';
import { EXIT, exitCode, formatJson, formatText } from './eval/output.js';
import { buildPolicies, checkBundle, findOpa } from './eval/opa-build.js';
import type { Credentials } from './eval/request.js';
import { evaluate } from './eval/run.js';
import { UsageError } from './eval/usage-error.js';

const USAGE = `usage: node dist/src/cli/policy.js eval [options]
       node dist/src/cli/policy.js build --out FILE [--entrypoint P] [--opa PATH] DIR
       node dist/src/cli/policy.js check --bundle FILE [--decision-path P]

  eval  runs one request through the service's own Check pipeline, built from the service's
        config (authenticators, issuers and JWKS, API key stores, revocation, routes, policy),
        without Envoy and without listening; prints the identity, the policy input, the raw
        policy result and the CheckResponse Envoy would receive.
    --config FILE          the service's config (default: $AUTHZ_CONFIG, else the embedded defaults)
    --policies DIR         build DIR as \`make policies\` does and use it instead of the configured bundle
    --bundle FILE          use this bundle.tar.gz (opa build -t wasm) instead of the configured one
    --decision-path P      the decision rule (default: policy.decision_path, envoy/authz/allow)
    --request FILE         the request: a CheckRequest as JSON (proto field names, as Envoy sends
                           it), or the short form {"method", "path", "host", "headers", "body",
                           "source_address", "context_extensions", "identity"}; - reads stdin
    --method M --path P    the short form from flags, without --request (default GET /)
    --token JWT            a bearer token, in authentication.header with its scheme
    --api-key KEY          an API key, in authentication.api_keys.header
    --header 'NAME: VALUE' a request header (repeatable)
    --client-cert FILE     the peer certificate PEM, as Envoy forwards it (source.certificate)
    --spiffe-id ID         the peer principal Envoy took from the certificate (source.principal)
    --source-address IP    the downstream address (source.address)
    --output text|json     a readable report (default), or one JSON document
                           {authentication, route, allowed, reason, identity, input, result,
                            revision, check_response, notes}
    --opa PATH             the opa binary for --policies (default: $OPA_BIN, opa on PATH, .tools/bin/opa)
        A short-form "identity" (input.identity's shape) bypasses authentication and says so.
        Exit code: 0 allowed, 1 denied, 3 no decision (Envoy would get a gRPC error), 2 usage or
        config error.

  build  compiles the Rego and data of DIR (without build/, *_test.rego, README.md) to a wasm
         bundle with a revision derived from its sources (plus the system/log/mask entrypoint when
         a policy declares package system.log), and keeps it only if the service can load it
    --out FILE   --entrypoint P (default envoy/authz/allow)   --opa PATH

  check  loads a bundle as the service does: fails (exit 1), naming them, on built-ins the
         service does not implement, a missing entrypoint or an unreadable archive
    --bundle FILE   --decision-path P (default envoy/authz/allow)

  --help  this text
`;

/** A request file is a CheckRequest with a body at most: Envoy's max_request_bytes is far below this. */
const MAX_REQUEST_BYTES = 8 * 1024 * 1024;

async function readRequest(source: string): Promise<unknown> {
  let text: string;
  if (source === '-') {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_REQUEST_BYTES) throw new UsageError(`request on stdin is larger than ${MAX_REQUEST_BYTES} bytes`);
      chunks.push(chunk);
    }
    text = Buffer.concat(chunks).toString('utf8');
  } else {
    let buf: Buffer;
    try {
      buf = await readFile(source);
    } catch (err) {
      throw new UsageError(`cannot read ${source}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`);
    }
    if (buf.byteLength > MAX_REQUEST_BYTES) throw new UsageError(`${source} is larger than ${MAX_REQUEST_BYTES} bytes`);
    text = buf.toString('utf8');
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new UsageError(`request ${source === '-' ? '(stdin)' : source} is not JSON: ${errorMessage(err)}`);
  }
}

function headerFlag(h: string): [string, string] {
  const colon = h.indexOf(':');
  if (colon <= 0) throw new UsageError(`--header ${JSON.stringify(h)}: expected 'NAME: VALUE'`);
  return [h.slice(0, colon).trim().toLowerCase(), h.slice(colon + 1).trim()];
}

async function evalCommand(args: string[]): Promise<number> {
  const { values: v } = parseArgs({
    args,
    options: {
      config: { type: 'string' },
      policies: { type: 'string' },
      bundle: { type: 'string' },
      'decision-path': { type: 'string' },
      request: { type: 'string' },
      method: { type: 'string' },
      path: { type: 'string' },
      token: { type: 'string' },
      'api-key': { type: 'string' },
      header: { type: 'string', multiple: true },
      'client-cert': { type: 'string' },
      'spiffe-id': { type: 'string' },
      'source-address': { type: 'string' },
      output: { type: 'string', default: 'text' },
      opa: { type: 'string' },
    },
    strict: true,
  });
  if (v.policies !== undefined && v.bundle !== undefined) throw new UsageError('give --policies or --bundle, not both');
  if (v.output !== 'text' && v.output !== 'json') throw new UsageError('--output is text or json');
  if (v.request !== undefined && (v.method !== undefined || v.path !== undefined)) throw new UsageError('--method and --path are for a request without --request; put them in the request');
  const request = v.request !== undefined ? await readRequest(v.request) : { method: v.method ?? 'GET', path: v.path ?? '/' };
  let clientCertPem: string | undefined;
  if (v['client-cert'] !== undefined) {
    try {
      clientCertPem = await readFile(v['client-cert'], 'utf8');
    } catch (err) {
      throw new UsageError(`cannot read ${v['client-cert']}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`);
    }
  }
  const credentials: Credentials = {
    headers: Object.fromEntries((v.header ?? []).map(headerFlag)),
    ...(v.token !== undefined ? { token: v.token } : {}),
    ...(v['api-key'] !== undefined ? { apiKey: v['api-key'] } : {}),
    ...(clientCertPem !== undefined ? { clientCertPem } : {}),
    ...(v['spiffe-id'] !== undefined ? { principal: v['spiffe-id'] } : {}),
    ...(v['source-address'] !== undefined ? { sourceAddress: v['source-address'] } : {}),
  };
  const report = await evaluate({
    request,
    credentials,
    ...(v.config !== undefined ? { configFile: v.config } : {}),
    ...(v.policies !== undefined ? { policies: v.policies } : {}),
    ...(v.bundle !== undefined ? { bundle: v.bundle } : {}),
    ...(v['decision-path'] !== undefined ? { decisionPath: v['decision-path'] } : {}),
    ...(v.opa !== undefined ? { opa: v.opa } : {}),
  });
  process.stdout.write(v.output === 'json' ? formatJson(report) : formatText(report));
  return exitCode(report);
}

async function buildCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { out: { type: 'string' }, entrypoint: { type: 'string', default: 'envoy/authz/allow' }, opa: { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  if (values.out === undefined || positionals.length !== 1) throw new UsageError('build needs --out FILE and one policies folder');
  const { revision } = await buildPolicies({ opa: findOpa(values.opa), dir: positionals[0]!, out: values.out, entrypoint: values.entrypoint });
  process.stderr.write(`${values.out}: revision ${revision}\n`);
  return 0;
}

async function checkCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { bundle: { type: 'string' }, 'decision-path': { type: 'string', default: 'envoy/authz/allow' } }, strict: true });
  if (values.bundle === undefined) throw new UsageError('check needs --bundle FILE');
  try {
    const { revision } = await checkBundle(values.bundle, values['decision-path']);
    process.stdout.write(`${values.bundle}: loads (revision ${revision || 'none'})\n`);
    return 0;
  } catch (err) {
    // The bundle does not load: exit 1 (2 stays for usage errors).
    process.stderr.write(`policy check: ${values.bundle}: ${errorMessage(err)}\n`);
    return 1;
  }
}

async function run([command, ...rest]: string[]): Promise<number> {
  if (command === undefined || command === '--help' || command === '-h' || command === 'help' || rest.includes('--help')) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (command === 'eval') return evalCommand(rest);
  if (command === 'build') return buildCommand(rest);
  if (command === 'check') return checkCommand(rest);
  throw new UsageError(`unknown command ${JSON.stringify(command)} (eval, build, check; --help)`);
}

run(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`configuration error:\n${err.problems.map((p) => `  ${err.file}: ${p.keyPath}: ${p.problem}`).join('\n')}\n`);
    } else {
      // Usage, config and startup problems (a bundle that does not load, an unreachable Redis): one line.
      const known = err instanceof UsageError || err instanceof StartupError || (err instanceof TypeError && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS'));
      process.stderr.write(`policy ${process.argv[2] ?? ''}: ${known ? '' : 'error: '}${errorMessage(err)}\n`);
    }
    process.exitCode = EXIT.usage;
  },
);
