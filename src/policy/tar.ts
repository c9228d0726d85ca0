// A minimal reader for gzip'd tar archives (OPA bundles): regular files only. Hostile archives
// (gzip bombs) are the case it is built for: the gzip stream is inflated on the libuv thread
// pool, never on the event loop, and the tar is parsed as chunks arrive, so the caps hold as
// bytes arrive: a member that would take the archive past its budget is refused at its header,
// before its body is inflated, and inflating stops there, or at the end-of-archive marker (what
// follows it is never inflated). Names are normalized ("/x", "./x" -> "x").
import { createGunzip } from 'node:zlib';

export interface TarLimits {
  readonly maxCompressedBytes: number;
  /** Budget of the whole decompressed tar (headers, padding and members); bounds the memory a load can take. */
  readonly maxUncompressedBytes: number;
  readonly maxFiles: number;
}

/** A GNU long name is a path: longer than this is not a bundle. */
const MAX_LONG_NAME = 4096;
const BLOCK = 512;

function field(block: Buffer, start: number, len: number): string {
  const raw = block.subarray(start, start + len);
  const nul = raw.indexOf(0);
  return raw.subarray(0, nul < 0 ? raw.length : nul).toString('utf8');
}

/** The header checksum, summed as unsigned or (some old writers) as signed bytes, as Go's reader accepts. */
function checksumOk(header: Buffer): boolean {
  const stored = parseInt(field(header, 148, 8).trim() || 'x', 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 32 : header[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return stored === unsigned || stored === signed;
}

const isZero = (b: Buffer): boolean => b.every((x) => x === 0);

/** The tar format as a push parser: feed it decompressed chunks; it says when the archive ended. */
class TarParser {
  readonly files = new Map<string, Buffer>();
  /** Bytes of the tar parsed so far. */
  private pos = 0;
  /** Bytes of the header being assembled. */
  private header = Buffer.alloc(BLOCK);
  private headerFill = 0;
  /** The member being read: its body bytes still to come, then its padding. */
  private member: { name: string; type: string; left: number; pad: number; content: Buffer | undefined } | undefined;
  private longName: string | undefined;
  done = false;

  constructor(private readonly limits: TarLimits) {}

  /** Takes one chunk; true once the end-of-archive marker was read (the rest is never looked at). */
  push(chunk: Buffer): boolean {
    let off = 0;
    while (off < chunk.length && !this.done) {
      if (this.member) {
        const n = this.body(chunk.subarray(off));
        off += n;
        this.pos += n;
        continue;
      }
      const n = Math.min(BLOCK - this.headerFill, chunk.length - off);
      chunk.copy(this.header, this.headerFill, off, off + n);
      this.headerFill += n;
      off += n;
      this.pos += n;
      if (this.headerFill === BLOCK) {
        this.headerFill = 0;
        this.startMember(this.header);
      }
    }
    return this.done;
  }

  /** The stream ended: fine at a member boundary (tar without its end marker), not inside one. */
  end(): void {
    if (!this.done && (this.member || this.headerFill > 0)) throw new Error('truncated tar member');
  }

  private startMember(header: Buffer): void {
    if (isZero(header)) {
      this.done = true;
      return;
    }
    if (this.pos > this.limits.maxUncompressedBytes) throw this.tooLarge();
    if (!checksumOk(header)) throw new Error('not a tar archive (bad header checksum)');
    const rawSize = field(header, 124, 12).trim();
    // Octal only: base-256 sizes (header[124] & 0x80) are for members over 8 GiB.
    const size = /^[0-7]*$/.test(rawSize) ? parseInt(rawSize || '0', 8) : NaN;
    if (!Number.isSafeInteger(size)) throw new Error('bad tar member size');
    const type = String.fromCharCode(header[156] ?? 48);
    const prefix = field(header, 345, 155);
    const name = this.longName ?? (prefix ? `${prefix}/${field(header, 0, 100)}` : field(header, 0, 100));
    this.longName = undefined;
    const pad = (BLOCK - (size % BLOCK)) % BLOCK;
    // Checked at the header, before its body is inflated: no member can take the archive past its budget.
    if (this.pos + size + pad > this.limits.maxUncompressedBytes) throw this.tooLarge(name, size);
    if (type === 'L' && size > MAX_LONG_NAME) throw new Error(`long name of ${size} bytes`);
    const regular = type === '0' || type === '\0';
    if (regular && this.files.size >= this.limits.maxFiles) throw new Error(`more than ${this.limits.maxFiles} files`);
    // Allocated at its declared size (within the budget), filled as bytes arrive: memory grows only
    // with what was inflated, and there is no second copy.
    this.member = { name, type, left: size, pad, content: regular || type === 'L' ? Buffer.allocUnsafe(size) : undefined };
    if (size === 0) this.body(Buffer.alloc(0));
  }

  private tooLarge(name?: string, size?: number): Error {
    const at = name !== undefined ? ` (member ${JSON.stringify(name.slice(0, 100))} of ${size} bytes at offset ${this.pos})` : '';
    return new Error(`archive larger than ${this.limits.maxUncompressedBytes} bytes decompressed${at}`);
  }

  /** Consumes body and padding bytes of the current member; returns how many it took. */
  private body(data: Buffer): number {
    const m = this.member!;
    const take = Math.min(m.left, data.length);
    if (take > 0) {
      if (m.content) data.copy(m.content, m.content.length - m.left, 0, take);
      m.left -= take;
    }
    const pad = Math.min(m.pad, data.length - take);
    m.pad -= pad;
    if (m.left === 0 && m.pad === 0) {
      this.member = undefined;
      this.finishMember(m.name, m.type, m.content);
    }
    return take + pad;
  }

  private finishMember(rawName: string, type: string, content: Buffer | undefined): void {
    if (!content) return; // directories, links, pax headers: skipped (their bytes still count)
    if (type === 'L') {
      // GNU long name: the next member's name is this member's content.
      this.longName = content.toString('utf8').replace(/\0+$/, '');
      return;
    }
    const name = rawName.replace(/^(\.\/|\/)+/, '');
    if (name === '' || name.split('/').includes('..')) throw new Error(`unsafe member name ${JSON.stringify(name.slice(0, 100))}`);
    this.files.set(name, content);
  }
}

/** Reads the regular files of a .tar.gz, inflating off the event loop, every cap enforced as bytes arrive. */
export function readTarGz(archive: Buffer, limits: TarLimits): Promise<Map<string, Buffer>> {
  if (archive.length > limits.maxCompressedBytes) return Promise.reject(new Error(`archive larger than ${limits.maxCompressedBytes} bytes`));
  return new Promise((resolve, reject) => {
    const parser = new TarParser(limits);
    const gunzip = createGunzip({ chunkSize: 64 * 1024 });
    let settled = false;
    const finish = (err?: unknown): void => {
      if (settled) return;
      settled = true;
      gunzip.destroy(); // stops inflating: nothing after the end marker or the cap is decompressed
      if (err !== undefined) reject(err instanceof Error ? err : new Error('cannot read the archive'));
      else resolve(parser.files);
    };
    gunzip.on('data', (chunk: Buffer) => {
      if (settled) return;
      try {
        if (parser.push(chunk)) finish();
      } catch (err) {
        finish(err);
      }
    });
    gunzip.on('end', () => {
      try {
        parser.end();
        finish();
      } catch (err) {
        finish(err);
      }
    });
    gunzip.on('error', (err) => finish(new Error(`not gzip (${err.message})`)));
    gunzip.end(archive);
  });
}
