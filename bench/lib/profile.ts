// Summarizes a V8 .cpuprofile (node --cpu-prof): self time by function, heaviest first, and
// by package (node_modules/<pkg>, our src/<dir>, node: internals, native/GC).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  file: string;
  seconds: number;
  /** Share of samples (percent) by function, top entries. */
  functions: { name: string; where: string; percent: number }[];
  /** Share of samples (percent) by area. */
  areas: { area: string; percent: number }[];
}

export function areaOf(url: string, name: string): string {
  if (url === '') return name.startsWith('(') ? name : '(native)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  const ours = /\/dist\/src\/([^/]+)\//.exec(url);
  if (ours) return `src/${ours[1]!}`;
  if (url.startsWith('node:')) return 'node: internals';
  return url.replace(/^.*\//, '');
}

/** `node_modules/pkg/file.js:12` or `dist/src/x.js:3`: short, and the same for CPU and heap profiles. */
export function whereOf(url: string, lineNumber: number): string {
  return url ? `${url.replace(/^.*\/(node_modules|dist)\//, '$1/').replace(/^file:\/\//, '')}:${lineNumber + 1}` : '';
}

export function summarizeProfile(file: string, top = 15): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const total = p.nodes.reduce((s, n) => s + (n.hitCount ?? 0), 0) || 1;
  const byFn = new Map<string, { name: string; where: string; hits: number }>();
  const byArea = new Map<string, number>();
  for (const n of p.nodes) {
    const hits = n.hitCount ?? 0;
    if (hits === 0) continue;
    const { functionName, url, lineNumber } = n.callFrame;
    const name = functionName || '(anonymous)';
    const where = whereOf(url, lineNumber);
    const key = `${name}@${where}`;
    const e = byFn.get(key) ?? { name, where, hits: 0 };
    e.hits += hits;
    byFn.set(key, e);
    const area = areaOf(url, name);
    byArea.set(area, (byArea.get(area) ?? 0) + hits);
  }
  const pct = (h: number): number => Math.round((h / total) * 1000) / 10;
  return {
    file,
    seconds: Math.round((p.endTime - p.startTime) / 1e5) / 10,
    functions: [...byFn.values()].sort((a, b) => b.hits - a.hits).slice(0, top).map((e) => ({ name: e.name, where: e.where, percent: pct(e.hits) })),
    areas: [...byArea.entries()].sort((a, b) => b[1] - a[1]).slice(0, top).map(([area, hits]) => ({ area, percent: pct(hits) })),
  };
}

/** The newest profile in `dir`. */
export function latestProfile(dir: string): string | undefined {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort();
  return files.length ? join(dir, files[files.length - 1]!) : undefined;
}
