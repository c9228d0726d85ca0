// The suite's rule for log output: no line longer than 4 KB (docs/operations.md, "Admin API and
// logs"). Every line our code writes during a test file passes through here: in-process loggers
// (capture() in log.ts), the worker's own stdout/stderr, and the output of service processes the
// helpers spawn (service.ts). test/setup/line-guard.ts fails the file when the rule is broken.
export const MAX_SUITE_LINE_BYTES = 4096;

export interface LongestLine {
  readonly bytes: number;
  readonly source: string;
  readonly head: string;
}

let longest: LongestLine = { bytes: 0, source: '', head: '' };

/** One whole line (without its newline) written by `source`. */
export function observeLine(source: string, line: string): void {
  // A UTF-16 unit is at most 3 bytes: most lines need no byte count.
  if (line.length * 3 <= longest.bytes) return;
  const bytes = Buffer.byteLength(line);
  if (bytes > longest.bytes) longest = { bytes, source, head: line.slice(0, 200) };
}

/** A sink for a stream of chunks from `source`: lines may span chunks; a last unterminated line counts at `end`. */
export function lineMeter(source: string): { write(chunk: string | Uint8Array): void; end(): void } {
  let carry = '';
  return {
    write(chunk) {
      const text = carry + (typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
      const lines = text.split('\n');
      carry = lines.pop() ?? '';
      for (const l of lines) observeLine(source, l);
      // An unterminated line is measured as it grows, so a never-ending line is still caught.
      observeLine(source, carry);
    },
    end() {
      observeLine(source, carry);
      carry = '';
    },
  };
}

export function longestLine(): LongestLine {
  return longest;
}

export function resetLongestLine(): void {
  longest = { bytes: 0, source: '', head: '' };
}
