// A deny rule (REC-API-17, V-274844, V-274850): by token jti, subject, API key id or source CIDR,
// with its validation and its stored (JSON) form.
import { parseApiKey } from '../../authn/apikey-format.js';
import { parseCidr } from '../../lib/cidr.js';

export const DENY_KINDS = ['jti', 'subject', 'api_key', 'cidr'] as const;
export type DenyKind = (typeof DENY_KINDS)[number];

export interface DenyEntry {
  readonly kind: DenyKind;
  readonly value: string;
  /** Epoch seconds; absent: until removed. */
  readonly expiresAt?: number;
  readonly reason?: string;
  readonly createdAt: number;
  readonly createdBy?: string;
}

/** A change: one entry added or removed, or `reset` when the whole list was reloaded. */
export type DenyChange = { op: 'add' | 'remove'; entry: DenyEntry } | { op: 'reset' };

const API_KEY_ID = /^[A-Za-z0-9]{12}$/;

/**
 * The value to store for what an admin sent: for `api_key`, a whole key (any prefix, valid
 * checksum) becomes its id, so the secret part is never stored, announced or logged.
 */
export function normalizeDenyValue(kind: DenyKind, value: string): string {
  if (kind !== 'api_key' || API_KEY_ID.test(value)) return value;
  const prefix = /^[a-z][a-z0-9]{1,15}(?=_)/.exec(value)?.[0];
  return (prefix !== undefined ? parseApiKey(value, prefix)?.id : undefined) ?? value;
}

/** Validates a (normalized) value for its kind; returns a problem, which never quotes the value, or undefined. */
export function denyValueProblem(kind: DenyKind, value: string): string | undefined {
  if (value === '' || value.length > 2048) return 'value must be 1..2048 characters';
  if (kind === 'api_key' && !API_KEY_ID.test(value)) return 'value must be an API key id (12 letters or digits) or a whole valid API key';
  if (kind === 'cidr' && typeof parseCidr(value) === 'string') return 'not an IP address or CIDR with a valid prefix length';
  return undefined;
}

/** An entry from its stored JSON; undefined when it is not a valid entry. */
export function parseEntry(raw: string): DenyEntry | undefined {
  try {
    const e = JSON.parse(raw) as Partial<DenyEntry>;
    if (typeof e.kind !== 'string' || !(DENY_KINDS as readonly string[]).includes(e.kind) || typeof e.value !== 'string') return undefined;
    if (denyValueProblem(e.kind, e.value)) return undefined;
    return {
      kind: e.kind,
      value: e.value,
      createdAt: typeof e.createdAt === 'number' ? e.createdAt : 0,
      ...(typeof e.expiresAt === 'number' ? { expiresAt: e.expiresAt } : {}),
      ...(typeof e.reason === 'string' ? { reason: e.reason } : {}),
      ...(typeof e.createdBy === 'string' ? { createdBy: e.createdBy } : {}),
    };
  } catch {
    return undefined;
  }
}
