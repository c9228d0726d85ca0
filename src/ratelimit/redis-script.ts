// One Lua script, run as one EVALSHA per call on a standalone (or sentinel) connection, without
// ioredis' auto-pipelining and script wrapper. Auto-pipelining keeps one pipeline in flight at a
// time: calls arriving meanwhile wait for its replies and leave together, so batch sizes - and the
// CPU per call - swing with timing. Here no call waits for another's reply: the commands of one
// turn of the event loop share one socket write (the stream is corked until the next check phase:
// the gRPC transport starts every handler from setImmediate, so the calls a turn's reads brought
// go out together - one write and one Redis read for all, not one each). The SHA is computed
// once; on NOSCRIPT (a restarted or flushed Redis) the call is sent again as EVAL, which loads it.
import { createHash } from 'node:crypto';
import { Command, type Redis } from 'ioredis';

export class RedisScript {
  private readonly sha: string;
  private corked = false;

  constructor(
    private readonly client: Redis,
    private readonly lua: string,
  ) {
    this.sha = createHash('sha1').update(lua).digest('hex');
  }

  /** `argv`: numkeys, the keys, then the arguments (strings: Redis gets them as they are). */
  run(argv: string[]): Promise<unknown> {
    argv.unshift(this.sha);
    const cmd = new Command('evalsha', argv);
    this.send(cmd);
    return cmd.promise.catch((err: unknown) => {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      argv[0] = this.lua;
      const again = new Command('eval', argv);
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
