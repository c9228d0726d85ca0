// docs/compliance.md must point at tests that exist: every `file` > `test name` reference is
// checked against the test titles in that file ("..." abbreviates the rest of a title).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../../helpers/service.js';

const doc = readFileSync(join(ROOT, 'docs', 'compliance.md'), 'utf8');

interface Ref {
  file: string;
  titles: string[];
}

function references(): Ref[] {
  const refs: Ref[] = [];
  // `test/...ts` optionally followed by > `title`, `title`, ...
  const re = /`((?:test|policies)\/[^`]+\.(?:ts|rego))`((?:\s*>\s*`[^`]+`(?:,\s*`[^`]+`)*)?)/g;
  for (const m of doc.matchAll(re)) {
    const titles = [...(m[2] ?? '').matchAll(/`([^`]+)`/g)].map((t) => t[1]!);
    refs.push({ file: m[1]!, titles });
  }
  return refs;
}

function titleExists(source: string, title: string): boolean {
  const unescape = (s: string): string => s.replace(/\\'/g, "'");
  const normalized = unescape(source);
  const parts = title.split('...').map((p) => p.trim()).filter((p) => p !== '');
  // Titles are written in the source as string literals; "..." stands for any text.
  return parts.every((p) => normalized.includes(p.replace(/\s+/g, ' ').replace(/ ,/g, ',')));
}

describe('docs/compliance.md references', () => {
  const refs = references();

  it('has references', () => {
    expect(refs.length).toBeGreaterThan(40);
  });

  it.each(refs.map((r) => [r.file, r] as const))('%s exists and names real tests', (_f, ref) => {
    const path = join(ROOT, ref.file);
    expect(existsSync(path), ref.file).toBe(true);
    const source = readFileSync(path, 'utf8');
    for (const t of ref.titles) expect(titleExists(source, t), `${ref.file} > ${t}`).toBe(true);
  });
});
