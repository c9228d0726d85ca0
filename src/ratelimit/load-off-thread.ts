// Large rate-limit files are read and compiled in a worker thread (compile-worker.ts,
// lib/module-worker.ts). The YAML parser takes 150-250 us and makes ~10 KB of garbage per
// descriptor: on the event loop a file of 10,000 descriptors stopped every call for 1.5-2.5 s, at
// each change of the file. The result comes back in parts of 250 nodes, one per turn of the event
// loop. The worker's heap is capped: files too large to read are refused like any invalid
// file, and the last good rules stay.
import { stat } from 'node:fs/promises';
import { ConfigError } from '../lib/errors.js';
import { IN_THREAD_MAX_BYTES, loadInParts, siblingModule } from '../lib/module-worker.js';
import type { Stop } from '../lib/stop.js';
import type { CompileJob, CompilePart, OpenNode } from './compile-worker.js';
import { loadRateLimitFiles, type CompileOptions, type DomainConfig } from './config.js';

/** The worker's old-generation cap: 10,000 descriptors peak at ~120 MB; the shipped pod (512 Mi) has room for it beside the service. */
export const COMPILE_HEAP_MB = 256;

interface Building {
  readonly domain: string;
  readonly file: string;
  /** The domain's nodes in the worker's depth-first order, the root first. */
  readonly nodes: { readonly node: OpenNode; readonly wildcardIds: readonly string[] }[];
}

/** Wildcards point to the child of the same id (as config.ts builds them): resolved once every node is in. */
function finish(b: Building): DomainConfig {
  for (const { node, wildcardIds } of b.nodes) {
    for (const id of wildcardIds) node.wildcards.push({ id, parts: id.split('*'), node: node.children.get(id)! });
  }
  return { domain: b.domain, file: b.file, root: b.nodes[0]!.node };
}

/** loadRateLimitFiles (config.ts), run in a worker thread: the same result, or the same ConfigError. */
export function loadRateLimitFilesOffThread(files: readonly string[], opts: CompileOptions, heapMb = COMPILE_HEAP_MB, stop?: Pick<Stop, 'onAbort'>): Promise<ReadonlyMap<string, DomainConfig>> {
  const building: Building[] = [];
  return loadInParts({
    module: siblingModule(import.meta.url, 'compile-worker'),
    data: { files, opts } satisfies CompileJob,
    heapMb,
    take: (value) => {
      const part = value as CompilePart;
      if (part.kind === 'domain') {
        building.push({ domain: part.domain, file: part.file, nodes: [] });
        return;
      }
      const nodes = building[building.length - 1]!.nodes;
      for (const [parent, id, node, wildcardIds] of part.nodes) {
        nodes.push({ node, wildcardIds });
        if (parent >= 0) nodes[parent]!.node.children.set(id, node);
      }
    },
    done: () => new Map(building.map((b) => [b.domain, finish(b)])),
    outOfMemory: () => new ConfigError(files.join(', '), [{ keyPath: '/', problem: `too large: reading the rate-limit files needs more than ${heapMb} MB` }]),
    ...(stop ? { stop } : {}),
  });
}

/** loadRateLimitFiles: on the event loop when the files are small (IN_THREAD_MAX_BYTES together), else in a worker thread. */
export async function loadRateLimitRules(files: readonly string[], opts: CompileOptions, stop?: Pick<Stop, 'onAbort'>): Promise<ReadonlyMap<string, DomainConfig>> {
  const sizes = await Promise.all(files.map((f) => stat(f).then((s) => s.size, () => 0)));
  const bytes = sizes.reduce((a, b) => a + b, 0);
  return bytes > IN_THREAD_MAX_BYTES ? loadRateLimitFilesOffThread(files, opts, COMPILE_HEAP_MB, stop) : loadRateLimitFiles(files, opts);
}
