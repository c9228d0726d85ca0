// One Lua script, run as one EVALSHA per call on a standalone (or sentinel) connection, without
// ioredis' auto-pipelining and script wrapper. Auto-pipelining keeps one pipeline in flight at a
// time: calls arriving meanwhile wait for its replies and leave together, so batch sizes - and the
// CPU per call - swing with timing. Here no call waits for another's reply: the commands of one
// turn of the event loop share one socket write (the stream is corked until the next check phase:
// the gRPC transport starts every handler from setImmediate, so the calls a turn's reads brought
// go out together - one write and one Redis read for all, not one each). The SHA is computed
// once; on NOSCRIPT (a restarted or flushed Redis) the call is sent again as EVAL, which loads it.
// The caller hands over the command's arguments already in Redis's wire format (RESP), so that the
// parts that never change - the SHA, a limit's parameters - are encoded once, not on every call:
// ioredis' Command copied the argument list and built the command text by one concatenation per
// piece (about 2 KB of garbage per call with one descriptor, half of it in that text).
import { createHash } from 'node:crypto';
import { Command, type Redis } from 'ioredis';

/** One RESP bulk string: the form of every argument in a Redis command. */
export const bulk = (s: string): string => `$${Buffer.byteLength(s, 'utf8')}\r\n${s}\r\n`;

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
  private corked = false;

  constructor(
    private readonly client: Redis,
    lua: string,
  ) {
    this.evalsha = bulk('evalsha') + bulk(createHash('sha1').update(lua).digest('hex'));
    this.eval = bulk('eval') + bulk(lua);
  }

  /**
   * `args`: numkeys, the keys, then the script's arguments, each encoded with bulk() and joined;
   * `count`: how many arguments that is.
   */
  run(count: number, args: string): Promise<unknown> {
    const head = `*${count + 2}\r\n`;
    const cmd = new EncodedCommand('evalsha', head + this.evalsha + args);
    this.send(cmd);
    return cmd.promise.catch((err: unknown) => {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      const again = new EncodedCommand('eval', head + this.eval + args);
      this.send(again);
      return again.promise;
    });
  }

  private send(cmd: Command): void {
    const stream = this.client.status === 'ready' ? this.client.stream : undefined;
    if (stream && !this.corked) {
      // Writes until then coalesce into one; uncorked on the same stream even if it is replaced meanwhile.
      this.corked = true;
      stream.cork();
      setImmediate(() => {
        this.corked = false;
        stream.uncork();
      });
    }
    void this.client.sendCommand(cmd);
  }
}
