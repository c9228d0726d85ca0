// Rate-limit files are read and compiled in a worker thread (compile-worker.ts). The YAML parser
// takes 150-250 us and makes ~10 KB of garbage per descriptor: a file of 10,000 descriptors held
// the event loop for 1.5-2.5 s, and every call waited that long, at each change of the file.
// Off the event loop, the service goes on answering: its thread takes the result in small parts,
// asking for the next one only after a turn of the event loop, and its heap never sees the
// parser's garbage. The worker's heap is capped: files too large to read are refused like any
// invalid file, and the last good rules stay.
import { ConfigError } from '../lib/errors.js';
import { moduleWorker, siblingModule } from '../lib/module-worker.js';
import type { CompileJob, CompilePart } from './compile-worker.js';
import type { CompileOptions, DomainConfig, Node, Wildcard } from './config.js';

/** The worker's old-generation cap: 10,000 descriptors peak at ~120 MB. */
export const COMPILE_HEAP_MB = 512;

interface Building {
  readonly domain: string;
  readonly file: string;
  readonly root: Omit<Node, 'children' | 'wildcards'>;
  readonly wildcardIds: readonly string[];
  readonly children: Map<string, Node>;
}

function finish(b: Building): DomainConfig {
  const wildcards: Wildcard[] = b.wildcardIds.map((id) => ({ id, parts: id.split('*'), node: b.children.get(id)! }));
  return { domain: b.domain, file: b.file, root: { ...b.root, children: b.children, wildcards } };
}

/** loadRateLimitFiles (config.ts), run in a worker thread: the same result, or the same ConfigError. */
export function loadRateLimitFilesOffThread(files: readonly string[], opts: CompileOptions, heapMb = COMPILE_HEAP_MB): Promise<ReadonlyMap<string, DomainConfig>> {
  return new Promise((resolve, reject) => {
    const worker = moduleWorker(siblingModule(import.meta.url, 'compile-worker'), { files, opts } satisfies CompileJob, { maxOldGenerationSizeMb: heapMb });
    const building: Building[] = [];
    let outcome: { ok: true; domains: ReadonlyMap<string, DomainConfig> } | { ok: false; error: Error } | undefined;
    const end = (o: NonNullable<typeof outcome>): void => {
      outcome ??= o;
      void worker.terminate();
    };
    worker.on('message', (part: CompilePart) => {
      switch (part.kind) {
        case 'domain': {
          const { wildcardIds, ...root } = part.root;
          building.push({ domain: part.domain, file: part.file, root, wildcardIds, children: new Map() });
          break;
        }
        case 'children':
          for (const [id, node] of part.entries) building[building.length - 1]!.children.set(id, node);
          break;
        case 'done':
          return end({ ok: true, domains: new Map(building.map((b) => [b.domain, finish(b)])) });
        case 'invalid':
          return end({ ok: false, error: new ConfigError(part.file, part.problems) });
        case 'failed':
          return end({ ok: false, error: new Error(part.message) });
      }
      // The next part after a turn of the event loop: calls waiting meanwhile are answered first.
      setImmediate(() => worker.postMessage('next'));
    });
    worker.once('error', (err: Error & { code?: string }) =>
      end({
        ok: false,
        error:
          err.code === 'ERR_WORKER_OUT_OF_MEMORY'
            ? new ConfigError(files.join(', '), [{ keyPath: '/', problem: `too large: reading the rate-limit files needs more than ${heapMb} MB` }])
            : new Error(`rate-limit files could not be read: ${err.message}`),
      }),
    );
    worker.once('exit', () => {
      if (!outcome) reject(new Error('rate-limit files could not be read: the worker stopped without a result'));
      else if (outcome.ok) resolve(outcome.domains);
      else reject(outcome.error);
    });
  });
}
