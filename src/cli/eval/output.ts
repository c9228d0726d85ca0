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

export function formatJson(r: EvalReport): string {
  return `${JSON.stringify(r, null, 2)}\n`;
}

export function formatText(r: EvalReport): string {
  const lines = [
    `verdict:        ${verdict(r)}`,
    `route:          ${r.route}`,
    `authentication: ${r.authentication}`,
    `identity:       ${r.identity ? who(r.identity) : '(none: anonymous)'}`,
    `policy:         ${r.input === null ? 'not evaluated' : `revision ${r.revision ?? '?'}; the input is in --output json`}`,
  ];
  if (r.input !== null) lines.push(`result:         ${indent(r.result)}`);
  lines.push(r.grpc_error ? `grpc error:     ${r.grpc_error.code} (${r.grpc_error.details})` : `check_response: ${indent(r.check_response)}`);
  if (r.notes.length > 0) lines.push('notes:', ...r.notes.map((n) => `  - ${n}`));
  return `${lines.join('\n')}\n`;
}
