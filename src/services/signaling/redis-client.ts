// An ioredis client whose command timeout does not count time this process was too busy to read
// the reply.
//
// ioredis's own `commandTimeout` is a timer started when the command is written. When the event
// loop is blocked for longer than that (an instance verifying 10,000 register frames read in one
// poll phase, on a loaded host), the timer fires in the timers phase before the poll phase reads
// the reply that has long been waiting in the socket, and the command fails with "Command timed
// out". Measured in the cluster benchmark: whole batches of 256 Redis claims refused as
// cluster_unavailable while Redis had answered them in milliseconds. Here, when the timer fires,
// the command gets one more turn of the event loop, whose poll phase reads whatever reply has
// arrived, before it is failed: a Redis that really does not answer is still given up on after
// about the same time; an answer that merely waited for this process is taken.
import { Redis, type RedisOptions } from 'ioredis';

type SendCommand = Redis['sendCommand'];

export class LagTolerantRedis extends Redis {
  constructor(
    url: string,
    options: Omit<RedisOptions, 'commandTimeout'>,
    private readonly commandTimeoutMs: number,
  ) {
    super(url, { ...options, commandTimeout: undefined });
  }

  override sendCommand(...args: Parameters<SendCommand>): ReturnType<SendCommand> {
    const [command] = args;
    const out = super.sendCommand(...args);
    if (!command.isResolved) {
      const timer = setTimeout(() => {
        setImmediate(() => {
          if (!command.isResolved) command.reject(new Error('Command timed out'));
        });
      }, this.commandTimeoutMs);
      const clear = () => clearTimeout(timer);
      command.promise.then(clear, clear);
    }
    return out;
  }
}
