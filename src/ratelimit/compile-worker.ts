// Worker thread entry (load-off-thread.ts): reads and compiles the rate-limit files named in
// workerData, then hands the result over in parts, one each time the service thread asks for the
// next: a domain's root first, then its top-level descriptors a batch at a time. Taking 10,000
// descriptors in one message cost that thread 50-70 ms of deserializing; a batch costs a few.
import { parentPort, workerData } from 'node:worker_threads';
import { ConfigError, errorMessage } from '../lib/errors.js';
import { loadRateLimitFiles, type CompileOptions, type DomainConfig, type Node } from './config.js';

export interface CompileJob {
  readonly files: readonly string[];
  readonly opts: CompileOptions;
}

/** A domain's root without its children; its wildcards by id (their nodes are among the children). */
export type RootPart = Omit<Node, 'children' | 'wildcards'> & { readonly wildcardIds: readonly string[] };

export type CompilePart =
  | { readonly kind: 'domain'; readonly domain: string; readonly file: string; readonly root: RootPart }
  | { readonly kind: 'children'; readonly entries: readonly (readonly [string, Node])[] }
  | { readonly kind: 'done' }
  | { readonly kind: 'invalid'; readonly file: string; readonly problems: ConfigError['problems'] }
  | { readonly kind: 'failed'; readonly message: string };

/** Top-level descriptors per message. */
const BATCH = 250;

function* parts(domains: ReadonlyMap<string, DomainConfig>): Generator<CompilePart> {
  for (const { domain, file, root } of domains.values()) {
    const { children, wildcards, ...rest } = root;
    yield { kind: 'domain', domain, file, root: { ...rest, wildcardIds: wildcards.map((w) => w.id) } };
    let entries: [string, Node][] = [];
    for (const entry of children) {
      entries.push(entry);
      if (entries.length === BATCH) {
        yield { kind: 'children', entries };
        entries = [];
      }
    }
    if (entries.length > 0) yield { kind: 'children', entries };
  }
  yield { kind: 'done' };
}

const job = workerData as CompileJob;
const port = parentPort!;
loadRateLimitFiles(job.files, job.opts).then(
  (domains) => {
    const next = parts(domains);
    const send = (): void => {
      const r = next.next();
      if (!r.done) port.postMessage(r.value);
    };
    port.on('message', send);
    send();
  },
  (err: unknown) =>
    port.postMessage((err instanceof ConfigError ? { kind: 'invalid', file: err.file, problems: err.problems } : { kind: 'failed', message: errorMessage(err) }) satisfies CompilePart),
);
