import { mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

/** A temp dir removed after the test file; `write` puts files in it (mode 0600 unless told). */
export function tempDir(): { dir: string; write: (name: string, data: unknown, mode?: number) => string } {
  const dir = mkdtempSync(join(tmpdir(), 'envoy-authz-test-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return {
    dir,
    write(name, data, mode = 0o600) {
      const p = join(dir, name);
      writeFileSync(p, typeof data === 'string' || Buffer.isBuffer(data) ? data : JSON.stringify(data));
      chmodSync(p, mode);
      return p;
    },
  };
}
