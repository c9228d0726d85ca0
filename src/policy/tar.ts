// Reads the regular files of a gzip'd tar archive (an OPA bundle) with node-tar's parser: ustar,
// PAX and GNU long names, header checksums, the end-of-archive marker. Hostile archives (gzip
// bombs) are the case it is built for: the gzip stream is inflated on the libuv thread pool,
// never on the event loop, and the tar is parsed as chunks arrive, so the caps hold as bytes
// arrive: a member that would take the archive past its budget (or is larger than a file may be)
// is refused at its header, before its body is inflated, and inflating stops there, or at the
// end-of-archive marker (what follows it is never inflated).
// Names are returned as the archive spells them ("/data.json", "./x"): signature checks compare
// them the way OPA does; bundle.ts normalizes them for loading.
import { createGunzip } from 'node:zlib';
import { Parser, type ReadEntry } from 'tar';

export interface TarLimits {
  readonly maxCompressedBytes: number;
  /** Budget of the whole decompressed tar (headers, padding and members); bounds the memory a load can take. */
  readonly maxUncompressedBytes: number;
  readonly maxFiles: number;
  /** Largest single file; by default the whole budget. */
  readonly maxFileBytes?: number;
}

export interface TarFile {
  /** As in the archive (PAX path, GNU long name or ustar prefix/name applied). */
  readonly path: string;
  readonly content: Buffer;
}

/** A path: longer than this is not a bundle's. */
const MAX_NAME = 4096;
const BLOCK = 512;
const padded = (size: number): number => Math.ceil(size / BLOCK) * BLOCK;

/** node-tar's strict-mode errors, said the way the rest of the loader says things. */
function tarError(err: Error & { tarCode?: string }): Error {
  if (/checksum failure/.test(err.message)) return new Error('not a tar archive (bad header checksum)');
  if (/Truncated input/.test(err.message)) return new Error('truncated tar member');
  return new Error(`not a tar archive (${err.message.slice(0, 200)})`);
}

/** Reads the regular files of a .tar.gz in archive order, inflating off the event loop, every cap enforced as bytes arrive. */
export function readTarGz(archive: Buffer, limits: TarLimits): Promise<TarFile[]> {
  if (archive.length > limits.maxCompressedBytes) return Promise.reject(new Error(`archive larger than ${limits.maxCompressedBytes} bytes`));
  const maxFile = Math.min(limits.maxFileBytes ?? Infinity, limits.maxUncompressedBytes);
  return new Promise((resolve, reject) => {
    const files: TarFile[] = [];
    const gunzip = createGunzip({ chunkSize: 64 * 1024 });
    // brotli/zstd off: the tar inside is never sniffed for another compression.
    const parser = new Parser({ strict: true, brotli: false, zstd: false });
    /** Decompressed bytes fed to the parser, and the bytes the members seen so far take (header + padded body). */
    let fed = 0;
    let committed = 0;
    let ended = false;
    let settled = false;
    const finish = (err?: unknown): void => {
      if (settled) return;
      settled = true;
      gunzip.destroy(); // stops inflating: nothing after the end marker or the cap is decompressed
      parser.removeAllListeners('entry');
      if (err !== undefined) reject(err instanceof Error ? err : new Error('cannot read the archive'));
      else resolve(files);
    };
    const tooLarge = (name?: string, size?: number): Error =>
      new Error(
        `archive larger than ${limits.maxUncompressedBytes} bytes decompressed${name !== undefined ? ` (member ${JSON.stringify(name.slice(0, 100))} of ${size} bytes)` : ''}`,
      );

    parser.on('entry', (entry: ReadEntry) => {
      if (settled) return entry.resume();
      const size = entry.size;
      // Checked at the header, before its body is inflated: no member can take the archive past its budget.
      committed += BLOCK + padded(size);
      const regular = entry.type === 'File' || entry.type === 'OldFile';
      try {
        if (committed > limits.maxUncompressedBytes) throw tooLarge(entry.path, size);
        if (!regular) return entry.resume(); // directories, links: skipped (their bytes still count)
        if (size > maxFile) throw new Error(`file ${JSON.stringify(entry.path.slice(0, 100))} of ${size} bytes is larger than ${maxFile} bytes`);
        if (files.length >= limits.maxFiles) throw new Error(`more than ${limits.maxFiles} files`);
        if (Buffer.byteLength(entry.path) > MAX_NAME) throw new Error(`member name of ${Buffer.byteLength(entry.path)} bytes`);
        if (entry.path.split('/').includes('..')) throw new Error(`unsafe member name ${JSON.stringify(entry.path.slice(0, 100))}`);
      } catch (err) {
        entry.resume();
        return finish(err);
      }
      // Allocated at its declared size (within the budget), filled as bytes arrive: memory grows only
      // with what was inflated, and there is no second copy.
      const content = Buffer.allocUnsafe(size);
      let filled = 0;
      entry.on('data', (chunk: Buffer) => {
        filled += chunk.copy(content, filled);
      });
      entry.on('end', () => {
        if (filled === size) files.push({ path: entry.path, content });
      });
    });
    // node-tar drops extended headers over 1 MiB; Go's reader (OPA's) refuses them, and so do we.
    parser.on('ignoredEntry', (entry: ReadEntry) => {
      if (entry.meta) finish(new Error(`extended header of ${entry.size} bytes`));
    });
    parser.on('eof', () => finish());
    parser.on('error', (err: Error) => {
      // No member at all: an empty archive (as for Go's reader) when it ends at a block boundary, else truncated.
      if (/Unrecognized archive format/.test(err.message) && ended && committed === 0) return finish(fed % BLOCK === 0 ? undefined : new Error('truncated tar member'));
      finish(tarError(err));
    });
    parser.on('end', () => {
      if (fed % BLOCK !== 0) return finish(new Error('truncated tar member'));
      finish();
    });

    gunzip.on('data', (chunk: Buffer) => {
      if (settled) return;
      if (fed === 0 && chunk[0] === 0x1f && chunk[1] === 0x8b) return finish(new Error('not a tar archive (gzip inside gzip)'));
      fed += chunk.length;
      parser.write(chunk);
      if (!settled && fed > limits.maxUncompressedBytes) finish(tooLarge());
    });
    gunzip.on('end', () => {
      if (settled) return;
      ended = true;
      parser.end();
    });
    gunzip.on('error', (err) => finish(new Error(`not gzip (${err.message})`)));
    gunzip.end(archive);
  });
}
