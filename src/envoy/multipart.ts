// multipart/form-data bodies read as opa-envoy-plugin reads them (Go's mime/multipart Reader):
// parts named by Content-Disposition form-data `name`, values in order per name, a part whose
// Content-Type contains application/json parsed as JSON, everything else kept as text. Where Go's
// reader fails (no closing boundary, a malformed header or JSON part), this throws. One linear pass.
import { RequestParseError } from '../lib/errors.js';
import { parseMediaType } from './media-type.js';

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Spaces and tabs off both ends (a loop, not a regex: linear on long runs). */
function trimWs(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s[a] === ' ' || s[a] === '\t')) a++;
  while (b > a && (s[b - 1] === ' ' || s[b - 1] === '\t')) b--;
  return s.slice(a, b);
}

class Reader {
  private pos = 0;
  private nl = '\r\n';
  private partsRead = 0;
  private readonly dash: string;

  constructor(
    private readonly s: string,
    boundary: string,
  ) {
    if (boundary === '') throw new RequestParseError('multipart: boundary is empty');
    this.dash = `--${boundary}`;
  }

  /** Like bufio.ReadSlice('\n'): the line with its newline; `eof` when the input ended first. */
  private line(): { line: string; eof: boolean } {
    const i = this.s.indexOf('\n', this.pos);
    const end = i < 0 ? this.s.length : i + 1;
    const line = this.s.slice(this.pos, end);
    this.pos = end;
    return { line, eof: i < 0 };
  }

  private static lwsp(s: string, i: number): string {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
    return s.slice(i);
  }

  private isDelimiter(line: string): boolean {
    if (!line.startsWith(this.dash)) return false;
    const rest = Reader.lwsp(line, this.dash.length);
    // Lines ending in \n alone (a violation of the spec Go tolerates) switch the reader into that mode.
    if (this.partsRead === 0 && rest === '\n') this.nl = '\n';
    return rest === this.nl;
  }

  private isFinal(line: string): boolean {
    if (!line.startsWith(`${this.dash}--`)) return false;
    const rest = Reader.lwsp(line, this.dash.length + 2);
    return rest === '' || rest === this.nl;
  }

  /** The headers of the next part (lower-cased names), or undefined at the final boundary. */
  next(): Map<string, string> | undefined {
    let expectNewPart = false;
    for (;;) {
      const { line, eof } = this.line();
      if (eof && this.isFinal(line)) return undefined;
      if (eof) throw new RequestParseError('multipart: NextPart: EOF');
      if (this.isDelimiter(line)) {
        this.partsRead++;
        return this.headers();
      }
      if (this.isFinal(line)) return undefined;
      if (expectNewPart) throw new RequestParseError('multipart: expecting a new Part');
      if (this.partsRead === 0) continue; // preamble
      if (line === this.nl) {
        expectNewPart = true;
        continue;
      }
      throw new RequestParseError('multipart: unexpected line in Next()');
    }
  }

  private headers(): Map<string, string> {
    const out = new Map<string, string>();
    let last: string | undefined;
    for (;;) {
      const { line, eof } = this.line();
      const text = line.endsWith('\r\n') ? line.slice(0, -2) : line.endsWith('\n') ? line.slice(0, -1) : line;
      if (text === '') {
        if (eof) throw new RequestParseError('multipart: unexpected EOF in part headers');
        return out;
      }
      if (text[0] === ' ' || text[0] === '\t') {
        if (last === undefined) throw new RequestParseError('malformed MIME header initial line');
        out.set(last, `${out.get(last)} ${trimWs(text)}`);
        continue;
      }
      const colon = text.indexOf(':');
      const key = colon > 0 ? text.slice(0, colon).toLowerCase() : '';
      if (!TOKEN.test(key)) throw new RequestParseError('malformed MIME header line');
      if (!out.has(key)) out.set(key, trimWs(text.slice(colon + 1)));
      last = key;
      if (eof) throw new RequestParseError('multipart: unexpected EOF in part headers');
    }
  }

  /** The body of the current part: up to "\r\n--boundary" followed by whitespace, "--" or the end. */
  body(): string {
    const start = this.pos;
    const nlDash = this.nl + this.dash;
    // A part may also end at once, with the boundary line right after its headers.
    if (this.s.startsWith(this.dash, start) && this.ends(start + this.dash.length)) return '';
    for (let from = start; ; ) {
      const i = this.s.indexOf(nlDash, from);
      if (i < 0) {
        this.pos = this.s.length;
        throw new RequestParseError('multipart: unexpected EOF in part');
      }
      if (this.ends(i + nlDash.length)) {
        this.pos = i;
        return this.s.slice(start, i);
      }
      from = i + 1;
    }
  }

  private ends(after: number): boolean {
    if (after === this.s.length) return true;
    const c = this.s[after];
    return c === ' ' || c === '\t' || c === '\r' || c === '\n' || (c === '-' && this.s[after + 1] === '-');
  }
}

function formName(disposition: string | undefined): string {
  if (disposition === undefined) return '';
  try {
    const m = parseMediaType(disposition);
    return m.type === 'form-data' ? (m.params.name ?? '') : '';
  } catch {
    return ''; // Go: an unreadable Content-Disposition has no name
  }
}

export function parseMultipart(payload: string, boundary: string, parseJson: (text: string) => unknown): Record<string, unknown[]> {
  const r = new Reader(payload, boundary);
  const values = new Map<string, unknown[]>();
  for (let h = r.next(); h !== undefined; h = r.next()) {
    const name = formName(h.get('content-disposition'));
    if (name === '') {
      try {
        r.body(); // skipped, as Go's reader skips it
      } catch {
        // Go discards the rest of an unnamed part; a missing boundary shows at the next part.
      }
      continue;
    }
    const text = r.body();
    const list = values.get(name) ?? [];
    list.push((h.get('content-type') ?? '').includes('application/json') ? parseJson(text) : text);
    values.set(name, list);
  }
  return Object.fromEntries(values);
}
