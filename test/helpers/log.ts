import { Writable } from 'node:stream';
import { lineMeter } from './line-guard.js';

/** A pino destination that keeps everything written, for assertions on log content. */
export function capture(): { stream: Writable; text: () => string; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const meter = lineMeter('an in-process logger');
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      meter.write(chunk.toString());
      cb();
    },
  });
  const text = (): string => chunks.join('');
  return {
    stream,
    text,
    lines: () =>
      text()
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}
