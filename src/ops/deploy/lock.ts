import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { CheckFailedError } from '../../errors.js';
import { isAlive } from '../../exec/pid.js';

export interface LockHolder {
  pid: number;
  purpose: string;
  since: string;
}

/**
 * The deploy lock (incidents take it too): a second deploy fails fast and says who holds it. A lock
 * left by a process that is gone is taken over.
 */
export async function withLock<T>(stateDir: string, purpose: string, fn: () => Promise<T>): Promise<T> {
  const file = path.join(stateDir, 'deploy.lock');
  await fs.mkdir(stateDir, { recursive: true });
  for (let attempt = 0; ; attempt++) {
    try {
      const h = await fs.open(file, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600);
      await h.writeFile(
        JSON.stringify({ pid: process.pid, purpose, since: new Date().toISOString() } satisfies LockHolder),
      );
      await h.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err;
      const holder = JSON.parse(await fs.readFile(file, 'utf8').catch(() => '{}')) as Partial<LockHolder>;
      if (holder.pid && isAlive(holder.pid)) {
        throw new CheckFailedError(
          `the deploy lock is held by pid ${holder.pid} (${holder.purpose}, since ${holder.since})`,
          `wait for it, or remove ${file} if that process is not ifmesh`,
          'locked',
        );
      }
      await fs.unlink(file).catch(() => {});
    }
  }
  try {
    return await fn();
  } finally {
    await fs.unlink(file).catch(() => {});
  }
}
