// A refusal as an RFC 9457 problem+json answer. It says which parameter or body pointer failed and
// why (the schema's rule), never the value sent. Names and pointer tokens come from the request:
// only short, plain ones are repeated; others are shown as "(name not shown)". Answered only after
// authentication and authorization (REC-API-14), so an unauthenticated caller never sees one.
import type { Refusal, Violation } from './validate.js';

const TITLES: Readonly<Record<Refusal['status'], string>> = {
  400: 'Bad Request',
  404: 'Not Found',
  405: 'Method Not Allowed',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
};

const DETAILS: Readonly<Record<Refusal['reason'], string>> = {
  undocumented: 'No operation of the API description matches this path.',
  method_not_allowed: 'The API description has no operation for this method on this path.',
  invalid_parameter: 'A parameter does not match the API description.',
  invalid_body: 'The request body does not match the API description.',
  body_required: 'The API description requires a request body.',
  unsupported_media_type: 'The API description does not accept this content type.',
  body_truncated: 'The request body is larger than the gateway inspects, so it cannot be validated.',
};

const SAFE = /^[A-Za-z0-9_.\-[\]]{1,64}$/;
const HIDDEN = '(name not shown)';

const safeName = (s: string): string => (SAFE.test(s) ? s : HIDDEN);
const safePointer = (p: string): string => (p === '/' ? p : p.split('/').map((t, i) => (i === 0 ? t : safeName(t))).join('/'));

function safeViolation(v: Violation): Record<string, string> {
  return {
    in: v.in,
    ...(v.name !== undefined ? { name: safeName(v.name) } : {}),
    ...(v.pointer !== undefined ? { pointer: safePointer(v.pointer) } : {}),
    problem: v.problem.slice(0, 200),
  };
}

export interface ProblemAnswer {
  readonly status: number;
  readonly body: string;
  readonly headers: readonly (readonly [string, string])[];
  /** The errors of the body, for the audit record. */
  readonly errors: readonly Readonly<Record<string, string>>[];
}

export function problemAnswer(r: Refusal): ProblemAnswer {
  const errors = r.violations.map(safeViolation);
  const body = JSON.stringify({
    type: 'about:blank',
    title: TITLES[r.status],
    status: r.status,
    detail: DETAILS[r.reason],
    ...(errors.length > 0 ? { errors } : {}),
  });
  return { status: r.status, body, headers: r.allow ? [['allow', r.allow.join(', ')]] : [], errors };
}

/** The violations as the audit log records them (the same safe form the client gets). */
export const safeViolations = (vs: readonly Violation[]): Record<string, string>[] => vs.map(safeViolation);
