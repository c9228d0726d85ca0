// V8's toLowerCase and toUpperCase make a new string even when nothing changes (about 32 bytes
// each). The hot path lower-cases header names, hosts and log keys that almost always are lower
// case already: these return the string itself then, and the built-in's answer otherwise.

/** `s.toLowerCase()`; `s` itself when it has no A-Z and nothing beyond ASCII. */
export function toLower(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c >= 65 && c <= 90) || c > 127) return s.toLowerCase();
  }
  return s;
}

/** `s.toUpperCase()`; `s` itself when it has no a-z and nothing beyond ASCII. */
export function toUpper(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c >= 97 && c <= 122) || c > 127) return s.toUpperCase();
  }
  return s;
}

const foldAscii = (c: number): number => (c >= 65 && c <= 90 ? c + 32 : c);

/** Whether `s` begins with `prefix`, ASCII letters matching in either case (nothing else folded), without copying either. */
export function startsWithAsciiNoCase(s: string, prefix: string): boolean {
  if (s.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (foldAscii(s.charCodeAt(i)) !== foldAscii(prefix.charCodeAt(i))) return false;
  return true;
}
