// An exclusive lock in the state directory (deploy now; incidents and maintenance later). Taking it
// is atomic: the holder's record is written whole to a private file, then hard-linked to the lock's
// name, which fails if anyone holds it. A lock whose holder is dead is taken over by compare-and-swap,
// never delete-then-create (which lets two takers each delete the other's fresh lock).
//
// A lock file that does not parse (empty or truncated: a disk that filled, an old-style writer that
// crashed between create and write) names no holder, so nobody can tell whether its holder lives or
// whether it is an open incident's hold on deploys. It is never taken over: after a short wait (a
// writer may be mid-write) the taker fails at once with a StateCorruptError naming the file and the
// fix, `rm <file>` once no ifmesh command of that state is running. Failing loudly beats both
// blocking forever and silently lifting an incident's hold.
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { CheckFailedError, StateCorruptError, StateWriteError } from '../errors.js';
import { isAlive } from '../exec/pid.js';
import { type Clock, systemClock } from '../util/clock.js';
import { whyUnwritable } from './json-file.js';
import type { StateDir } from './state-dir.js';

export interface LockHolder {
  pid: number;
  purpose: string;
  since: string;
  /** Unique to one taking of the lock: what the compare-and-swap compares. */
  token: string;
  /** Held past the taker's exit (an open incident) until released by token: never taken over as stale. */
  persistent?: boolean;
  /** What releases a persistent lock, named when it refuses someone. */
  release_hint?: string;
}

/** Whether a holder still holds its lock: an incident's persistent hold, or a live process. */
export function stillHeld(h: LockHolder): boolean {
  return h.persistent === true || isAlive(h.pid);
}

export interface HeldLock {
  holder: LockHolder;
  release(): Promise<void>;
}

/** A taker that died between its claim and its swap leaves a claim; one older than this is void. */
const ABANDONED_CLAIM_MS = 30_000;

/** How long an unparsable lock file may stay so before it is reported (a writer may be mid-write). */
const UNPARSABLE_GRACE_ROUNDS = 10;
const UNPARSABLE_POLL_MS = 50;

/** The holder; undefined when there is no lock file; 'corrupt' when it does not parse as a holder. */
async function readHolderOrCorrupt(file: string): Promise<LockHolder | undefined | 'corrupt'> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const h = JSON.parse(text) as Partial<LockHolder> | null;
    if (typeof h?.token === 'string' && Number.isInteger(h.pid)) return h as LockHolder;
  } catch {
    // reported by the caller
  }
  return 'corrupt';
}

async function readHolder(file: string): Promise<LockHolder | undefined> {
  const h = await readHolderOrCorrupt(file);
  return h === 'corrupt' ? undefined : h;
}

const corruptLock = (file: string) =>
  new StateCorruptError(
    file,
    `make sure no ifmesh command of this state is running (\`ifmesh status\`, \`ifmesh incident list\`), then \`rm ${file}\``,
  );

function heldError(name: string, file: string, h: LockHolder): CheckFailedError {
  if (h.persistent)
    return new CheckFailedError(
      `the ${name} lock is held by ${h.purpose} (since ${h.since})`,
      h.release_hint ?? `remove ${file} once it is over`,
      'locked',
    );
  return new CheckFailedError(
    `the ${name} lock is held by pid ${h.pid} (${h.purpose}, since ${h.since})`,
    `wait for it to finish, or remove ${file} if pid ${h.pid} is not ifmesh`,
    'locked',
  );
}

/**
 * Takes lock `name` of `state` or fails at once (exit 1, code `locked`) naming the holder.
 *
 * Stale takeover, as a compare-and-swap on the holder's token T: hard-link the lock to `<lock>.T`
 * (only one taker can create that name), check the linked file really is T (the lock may have changed
 * since we read it: then undo and start over), and only then rename our record over the lock. Every
 * other taker of T fails at the link, and a taker that read an older token finds the content changed.
 */
export async function acquireLock(
  state: StateDir,
  name: string,
  purpose: string,
  clock: Clock = systemClock,
  opts: Pick<LockHolder, 'persistent' | 'release_hint'> = {},
): Promise<HeldLock> {
  const file = state.lock(name);
  await fs.mkdir(state.root, { recursive: true }).catch((err: unknown) => {
    throw new StateWriteError(file, whyUnwritable(file, err));
  });
  const me: LockHolder = {
    pid: process.pid,
    purpose,
    since: new Date(clock.now()).toISOString(),
    token: randomBytes(12).toString('hex'),
    ...opts,
  };
  const mine = `${file}.${me.token}.new`;
  await writeNew(mine, file, me);
  try {
    // Bounded: each round takes the lock, fails naming a live holder, or saw the lock change hands.
    let unparsable = 0;
    for (let round = 0; round < 100; round++) {
      try {
        await fs.link(mine, file);
        return held(file, me);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const h = await readHolderOrCorrupt(file);
      if (!h) continue; // released in between: try again
      if (h === 'corrupt') {
        if (++unparsable > UNPARSABLE_GRACE_ROUNDS) throw corruptLock(file);
        await clock.sleep(UNPARSABLE_POLL_MS);
        continue;
      }
      if (stillHeld(h)) throw heldError(name, file, h);
      const claim = `${file}.${h.token}.claim`;
      try {
        await fs.link(file, claim);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') continue;
        if (code !== 'EEXIST') throw err;
        // Someone else is taking over this very lock: wait for them to finish and name them,
        // unless they died mid-way and left the claim behind.
        const st = await fs.stat(claim).catch(() => undefined);
        if (st && clock.now() - st.ctimeMs > ABANDONED_CLAIM_MS) await fs.unlink(claim).catch(() => {});
        else await clock.sleep(20);
        continue;
      }
      const claimed = await readHolder(claim);
      if (claimed?.token !== h.token) {
        // The lock changed between our read and our link: that claim names a live lock, not T.
        await fs.unlink(claim).catch(() => {});
        continue;
      }
      await fs.rename(mine, file);
      await fs.unlink(claim).catch(() => {});
      return held(file, me);
    }
    throw new CheckFailedError(`the ${name} lock at ${file} keeps changing hands`, 'try again', 'locked');
  } finally {
    await fs.unlink(mine).catch(() => {});
  }
}

function held(file: string, me: LockHolder): HeldLock {
  return {
    holder: me,
    release: async () => {
      // Only our own lock: had it been taken over (we looked dead), it is someone else's now.
      if ((await readHolder(file))?.token === me.token) await fs.unlink(file).catch(() => {});
    },
  };
}

/** Releases lock `name` if `token` still holds it (a persistent lock, from another process than its taker's). */
export async function releaseLock(state: StateDir, name: string, token: string): Promise<boolean> {
  const file = state.lock(name);
  if ((await readHolder(file))?.token !== token) return false;
  await fs.unlink(file).catch(() => {});
  return true;
}

/**
 * Hands a held persistent lock from `token` to a new holder without ever freeing it (tmp + rename
 * over the lock): nobody else can take a persistent lock meanwhile, so no deploy slips in between.
 */
export async function passLock(
  state: StateDir,
  name: string,
  token: string,
  purpose: string,
  clock: Clock,
  opts: Pick<LockHolder, 'persistent' | 'release_hint'>,
): Promise<LockHolder | undefined> {
  const file = state.lock(name);
  if ((await readHolder(file))?.token !== token) return undefined;
  const next: LockHolder = {
    pid: process.pid,
    purpose,
    since: new Date(clock.now()).toISOString(),
    token: randomBytes(12).toString('hex'),
    ...opts,
  };
  const tmp = `${file}.${next.token}.new`;
  await writeNew(tmp, file, next);
  await fs.rename(tmp, file).catch(async (err: unknown) => {
    await fs.rm(tmp, { force: true }).catch(() => {});
    throw new StateWriteError(file, whyUnwritable(file, err));
  });
  return next;
}

/** The current holder of lock `name`, if any; a lock file that does not parse is a StateCorruptError. */
export async function lockHolder(state: StateDir, name: string): Promise<LockHolder | undefined> {
  const file = state.lock(name);
  const h = await readHolderOrCorrupt(file);
  if (h === 'corrupt') throw corruptLock(file);
  return h;
}

/**
 * For a dry run: who holds lock `name` now (an incident's hold, or a live process), so the plan can
 * say the real run would refuse; what releases it, when the holder said. A lock file that no longer
 * parses counts as not held here: the real run names it.
 */
export async function blockedBy(
  state: StateDir,
  name: string,
): Promise<{ holder: string; pid: number; release_hint: string | null } | null> {
  const h = await lockHolder(state, name).catch(() => undefined);
  if (!h || !stillHeld(h)) return null;
  return { holder: h.purpose, pid: h.pid, release_hint: h.release_hint ?? null };
}

/** Runs `fn` holding lock `name`; released however `fn` ends. */
export async function withLock<T>(
  state: StateDir,
  name: string,
  purpose: string,
  fn: () => Promise<T>,
  clock: Clock = systemClock,
): Promise<T> {
  const lock = await acquireLock(state, name, purpose, clock);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

/** Writes a holder record beside the lock file; a failed write leaves nothing behind and names the lock. */
async function writeNew(tmp: string, file: string, holder: LockHolder): Promise<void> {
  try {
    await fs.writeFile(tmp, JSON.stringify(holder), { mode: 0o600 });
  } catch (err) {
    await fs.rm(tmp, { force: true }).catch(() => {});
    throw new StateWriteError(file, whyUnwritable(file, err));
  }
}
