// A Lua script run by EVALSHA on a standalone (or sentinel) connection, without ioredis' script
// wrapper and auto-pipelining. Auto-pipelining keeps one pipeline in flight at a time: calls
// arriving meanwhile wait for its replies and leave together, so batch sizes - and the CPU per
// call - swing with timing. Here nothing waits for another command's reply. The SHA is computed
// and encoded once; on NOSCRIPT (a restarted or flushed Redis) the command is sent again as EVAL,
// which loads the script. The command is written in Redis's wire format (RESP) by us: ioredis'
// Command copied the argument list and built the text by one concatenation per piece.
import { createHash } from 'node:crypto';
import { Command, type Redis } from 'ioredis';

/** One RESP bulk string: the form of every argument in a Redis command. */
const bulk = (s: string): string => `$${Buffer.byteLength(s, 'utf8')}\r\n${s}\r\n`;

/** A command whose wire form is given whole (ioredis sends what toWritable returns; the arguments are not read again). */
class EncodedCommand extends Command {
  constructor(
    name: string,
    private readonly wire: string,
  ) {
    super(name, []);
  }

  override toWritable(): string {
    return this.wire;
  }
}

export class RedisScript {
  /** EVALSHA's name and SHA, encoded. */
  private readonly evalsha: string;
  /** EVAL's name and the script, encoded (sent only after a NOSCRIPT). */
  private readonly eval: string;

  constructor(
    private readonly client: Redis,
    lua: string,
  ) {
    this.evalsha = bulk('evalsha') + bulk(createHash('sha1').update(lua).digest('hex'));
    this.eval = bulk('eval') + bulk(lua);
  }

  /** Runs the script with `args` (numkeys, the keys, then the script's arguments). */
  run(args: readonly string[]): Promise<unknown> {
    let body = '';
    for (const a of args) body += bulk(a);
    const head = `*${args.length + 2}\r\n`;
    const cmd = new EncodedCommand('evalsha', head + this.evalsha + body);
    void this.client.sendCommand(cmd);
    return cmd.promise.catch((err: unknown) => {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      const again = new EncodedCommand('eval', head + this.eval + body);
      void this.client.sendCommand(again);
      return again.promise;
    });
  }

  /** Runs `send`, whose commands then leave in one socket write (when connected; queued otherwise, as always). */
  corked(send: () => void): void {
    const stream = this.client.status === 'ready' ? this.client.stream : undefined;
    stream?.cork();
    try {
      send();
    } finally {
      stream?.uncork();
    }
  }
}
