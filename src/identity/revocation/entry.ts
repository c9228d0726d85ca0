// A deny rule (REC-API-17, V-274844, V-274850): by token jti, subject, API key id or source CIDR,
// with its validation and its stored (JSON) form.
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

/** Validates a value for its kind; returns a problem or undefined. */
export function denyValueProblem(kind: DenyKind, value: string): string | undefined {
  if (value === '' || value.length > 2048) return 'value must be 1..2048 characters';
  if (kind === 'cidr') {
    const cidr = parseCidr(value);
    if (typeof cidr === 'string') return cidr;
  }
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
