// Our redaction of decision-log events, after the bundle's mask: no credential leaves in a
// decision log whatever the policy's mask says. Values under credential-named keys (the keys of
// ../redact.ts, e.g. the authorization and cookie headers, plus the configured credential
// headers) become "[REDACTED]" and their pointers are listed in `masked` (as an OPA upsert
// would be); credential shapes inside other strings (JWS/JWE, our API keys, Bearer/Basic
// values) are masked in place. Unlike log records, strings are not cut: an event keeps its full
// input, bounded by the sinks' byte limits instead.
import { REDACTED, TOO_DEEP, maskShapes, sensitiveKey } from '../redact.js';
import type { DecisionEvent } from './event.js';
import { pathEscape } from './mask.js';

/** Deeper than this, a value is replaced (a parsed JSON body can nest deeply). */
const MAX_DEPTH = 64;
// The shortest string a credential shape can match (see redact.ts).
const MIN_SHAPE_CHARS = 14;

export class Scrubber {
  private readonly extraKeys: ReadonlySet<string>;

  /** `credentialHeaders`: lower-case header names that carry credentials in this deployment. */
  constructor(credentialHeaders: readonly string[]) {
    this.extraKeys = new Set(credentialHeaders.map((h) => h.toLowerCase()));
  }

  /** Redacts the event's input and result (copy-on-write: the caller's objects never change). */
  scrub(event: DecisionEvent): void {
    const masked: string[] = [];
    if (event.input !== undefined) event.input = this.walk(event.input, '/input', masked, 0);
    if (event.result !== undefined) event.result = this.walk(event.result, '/result', masked, 0);
    if (masked.length > 0) (event.masked ??= []).push(...masked);
  }

  private secretKey(key: string): boolean {
    return sensitiveKey(key) || this.extraKeys.has(key.toLowerCase());
  }

  private walk(v: unknown, at: string, masked: string[], depth: number): unknown {
    if (typeof v === 'string') return v.length < MIN_SHAPE_CHARS ? v : maskShapes(v, false);
    if (v === null || typeof v !== 'object') return v;
    if (depth >= MAX_DEPTH) return TOO_DEEP;
    if (Array.isArray(v)) {
      const arr = v as readonly unknown[];
      let out: unknown[] | undefined;
      arr.forEach((item, i) => {
        const r = this.walk(item, `${at}/${i}`, masked, depth + 1);
        if (r !== item) (out ??= [...arr])[i] = r;
      });
      return out ?? arr;
    }
    const rec = v as Record<string, unknown>;
    let out: Record<string, unknown> | undefined;
    // A raw header entry ({key: "authorization", rawValue: base64}): the secret is named by `key`.
    const namedSecret = typeof rec.key === 'string' && this.secretKey(rec.key);
    for (const key of Object.keys(rec)) {
      const item = rec[key];
      let r: unknown;
      const secret = this.secretKey(key) || (namedSecret && (key === 'value' || key === 'rawValue' || key === 'raw_value'));
      // A boolean under a credential name says a mode is on; it is no secret (as in redact.ts).
      if (secret && item !== null && typeof item !== 'boolean' && item !== REDACTED) {
        r = REDACTED;
        masked.push(`${at}/${pathEscape(key)}`);
      } else r = this.walk(item, `${at}/${pathEscape(key)}`, masked, depth + 1);
      if (r !== item) (out ??= { ...rec })[key] = r;
    }
    return out ?? rec;
  }
}
