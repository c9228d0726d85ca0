// The one reading of a `host:port` setting (IPv6 in brackets), used by the config rules, the
// listeners and the Redis clients alike.

export interface HostPort {
  /** Without brackets: `::1`, not `[::1]`. */
  readonly host: string;
  readonly port: number;
}

/** `host:port` split at the last colon; undefined when there is no colon or the port is not 0-65535. */
export function parseHostPort(text: string): HostPort | undefined {
  const sep = text.lastIndexOf(':');
  if (sep <= 0) return undefined;
  const portText = text.slice(sep + 1);
  if (!/^[0-9]{1,5}$/.test(portText)) return undefined;
  const port = Number(portText);
  if (port > 65535) return undefined;
  return { host: text.slice(0, sep).replace(/^\[(.*)\]$/, '$1'), port };
}

/** The same address with another port (the one a listener actually bound for port 0). */
export function withPort(address: string, port: number): string {
  return `${address.slice(0, address.lastIndexOf(':'))}:${port}`;
}
