// docs/configuration.md must have a row for every leaf key of the schema, showing its default.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigSchema } from '../../../src/config/schema.js';
import { ROOT } from '../../helpers/service.js';

interface Node {
  type?: string;
  properties?: Record<string, Node>;
  items?: Node;
  default?: unknown;
}

function keyPaths(node: Node, prefix = ''): { path: string; default: unknown }[] {
  const out: { path: string; default: unknown }[] = [];
  for (const [k, child] of Object.entries(node.properties ?? {})) {
    const path = prefix ? `${prefix}.${k}` : k;
    // Sections (objects with keys) are headings; their keys are the rows.
    if (child.properties) out.push(...keyPaths(child, path));
    else out.push({ path, default: child.default });
    if (child.items?.properties) out.push(...keyPaths(child.items, `${path}[]`));
  }
  return out;
}

describe('docs/configuration.md', async () => {
  const doc = await readFile(join(ROOT, 'docs', 'configuration.md'), 'utf8');
  const rows = new Map(
    doc
      .split('\n')
      .filter((l) => l.startsWith('| `'))
      .map((l) => {
        const cells = l.split('|').map((c) => c.trim());
        return [cells[1]!.replaceAll('`', ''), cells[2]!] as const;
      }),
  );

  it.each(keyPaths(ConfigSchema as Node))('documents $path', ({ path, default: def }) => {
    expect(rows.has(path), `no table row for ${path}`).toBe(true);
    if (def !== undefined && (typeof def !== 'object' || Array.isArray(def))) {
      const shown = Array.isArray(def) ? `[${def.join(', ')}]` : JSON.stringify(def).replace(/^"|"$/g, '');
      expect(rows.get(path)).toContain(shown);
    }
  });
});
