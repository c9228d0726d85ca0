// A minimal reader for gzip'd tar archives (OPA bundles): regular files only, with size and count
// caps checked before anything is allocated for a member. Names are normalized ("/x", "./x" -> "x").
import { gunzipSync } from 'node:zlib';

export interface TarLimits {
  readonly maxCompressedBytes: number;
  readonly maxUncompressedBytes: number;
  readonly maxFiles: number;
}

function field(block: Buffer, start: number, len: number): string {
  const raw = block.subarray(start, start + len);
  const nul = raw.indexOf(0);
  return raw.subarray(0, nul < 0 ? raw.length : nul).toString('utf8');
}

export function readTarGz(archive: Buffer, limits: TarLimits): Map<string, Buffer> {
  if (archive.length > limits.maxCompressedBytes) throw new Error(`archive larger than ${limits.maxCompressedBytes} bytes`);
  const tar = gunzipSync(archive, { maxOutputLength: limits.maxUncompressedBytes });
  const files = new Map<string, Buffer>();
  let off = 0;
  let longName: string | undefined;
  while (off + 512 <= tar.length) {
    const header = tar.subarray(off, off + 512);
    if (header.every((b) => b === 0)) break;
    const size = parseInt(field(header, 124, 12).trim() || '0', 8);
    const type = String.fromCharCode(header[156] ?? 48);
    if (!Number.isFinite(size) || size < 0 || off + 512 + size > tar.length) throw new Error('truncated tar member');
    const body = tar.subarray(off + 512, off + 512 + size);
    const prefix = field(header, 345, 155);
    let name = longName ?? (prefix ? `${prefix}/${field(header, 0, 100)}` : field(header, 0, 100));
    longName = undefined;
    if (type === 'L') {
      // GNU long name: the next member's name is this member's content.
      longName = body.toString('utf8').replace(/\0+$/, '');
    } else if (type === '0' || type === '\0') {
      name = name.replace(/^(\.\/|\/)+/, '');
      if (name === '' || name.split('/').includes('..')) throw new Error(`unsafe member name ${JSON.stringify(name)}`);
      if (files.size >= limits.maxFiles) throw new Error(`more than ${limits.maxFiles} files`);
      files.set(name, Buffer.from(body));
    }
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}
