// The report, for a person (labelled sections) or for a program (one JSON document), and the
// exit code a script can branch on.
import type { Identity } from '../../identity/identity.js';
import type { EvalReport } from './run.js';

/** 0 allowed, 1 denied, 3 no decision (Envoy gets a gRPC error or check.on_error's deny); 2 is for usage and config errors. */
export const EXIT = { allowed: 0, denied: 1, usage: 2, noDecision: 3 } as const;

export function exitCode(r: EvalReport): number {
  if (r.route === 'error') return EXIT.noDecision;
  return r.allowed ? EXIT.allowed : EXIT.denied;
}

function verdict(r: EvalReport): string {
  if (r.route === 'error') return `NO DECISION (${r.reason})`;
  if (r.allowed) return r.reason === 'ok' ? 'ALLOWED' : `ALLOWED (${r.reason})`;
  const status = (r.check_response?.deniedResponse as { status?: { code?: number } } | undefined)?.status?.code;
  return `DENIED${status !== undefined ? ` ${status}` : ''} (${r.reason})`;
}

const indent = (json: unknown): string => JSON.stringify(json, null, 2).replace(/\n/g, '\n  ');

/** One line: who, how, with what (the whole identity is in --output json). */
function who(id: Identity): string {
  const parts = [`${id.subject} (${id.kind} via ${id.method}, issuer ${id.issuer})`, `roles [${id.roles.join(', ')}]`, `scopes [${id.scopes.join(', ')}]`];
  if (id.workload) parts.push(`workload ${id.workload.id} (${id.workload.method})`);
  return parts.join(', ');
}

interface HeaderOption {
  header?: { key?: string; value?: string };
  appendAction?: number;
}
const pairs = (list: HeaderOption[] | undefined): string => (list ?? []).map((h) => `${h.header?.key ?? ''}: ${h.header?.value ?? ''}`).join(', ');

/** The CheckResponse as what Envoy does with it; the proto JSON itself is in --output json. */
function summary(resp: Record<string, unknown>): string[] {
  const out: string[] = [];
  const row = (label: string, value: string): void => {
    if (value !== '') out.push(`  ${label.padEnd(24)}${value}`);
  };
  const code = (resp.status as { code?: number } | undefined)?.code ?? 0;
  const ok = resp.okResponse as
    | { headers?: HeaderOption[]; headersToRemove?: string[]; responseHeadersToAdd?: HeaderOption[]; queryParametersToSet?: { key: string; value: string }[]; queryParametersToRemove?: string[] }
    | undefined;
  const denied = resp.deniedResponse as { status?: { code?: number }; headers?: HeaderOption[]; body?: string } | undefined;
  out.push(`check_response: gRPC status ${code}${code === 0 ? ' (OK: Envoy forwards the request)' : ' (Envoy answers the client)'}`);
  if (ok) {
    // appendAction 2 = OVERWRITE_IF_EXISTS_OR_ADD (ours); none = Envoy's default (the policy's).
    row('upstream, overwritten:', pairs(ok.headers?.filter((h) => h.appendAction === 2)));
    row('upstream, added:', pairs(ok.headers?.filter((h) => h.appendAction !== 2)));
    row('upstream, removed:', (ok.headersToRemove ?? []).join(', '));
    row('to the client:', pairs(ok.responseHeadersToAdd));
    row('query set:', (ok.queryParametersToSet ?? []).map((q) => `${q.key}=${q.value}`).join(', '));
    row('query removed:', (ok.queryParametersToRemove ?? []).join(', '));
  }
  if (denied) {
    row('status:', String(denied.status?.code ?? 403));
    row('headers:', pairs(denied.headers));
    row('body:', denied.body ?? '');
  }
  if (resp.dynamicMetadata !== undefined) row('dynamic metadata:', JSON.stringify(resp.dynamicMetadata));
  return out;
}

export function formatJson(r: EvalReport): string {
  return `${JSON.stringify(r, null, 2)}\n`;
}

export function formatText(r: EvalReport): string {
  const lines = [
    `verdict:        ${verdict(r)}`,
    `route:          ${r.route}`,
    `authentication: ${r.authentication}`,
    `identity:       ${r.identity ? who(r.identity) : '(none: anonymous)'}`,
    `policy:         ${r.input === null ? 'not evaluated' : `revision ${r.revision ?? '?'} (the input and the CheckResponse as proto JSON: --output json)`}`,
  ];
  if (r.input !== null) lines.push(`result:         ${indent(r.result)}`);
  if (r.grpc_error) lines.push(`grpc error:     ${r.grpc_error.code} (${r.grpc_error.details}): Envoy's failure_mode_allow / status_on_error decide`);
  if (r.check_response) lines.push(...summary(r.check_response));
  if (r.notes.length > 0) lines.push('notes:', ...r.notes.map((n) => `  - ${n}`));
  return `${lines.join('\n')}\n`;
}
