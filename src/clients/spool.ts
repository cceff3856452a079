import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { isAlive } from '../exec/pid.js';

export class SpoolLockedError extends Error {}

/** Who holds a spool: its pid and the token of that taking (what a stale takeover compares). */
interface SpoolHolder {
  pid: number;
  token: string;
}

/** A lock file's holder: JSON from this version, a bare pid from older ones. */
function parseHolder(text: string): SpoolHolder | undefined {
  if (/^\d+$/.test(text.trim())) return { pid: Number(text.trim()), token: '' };
  try {
    const h = JSON.parse(text) as SpoolHolder;
    return Number.isInteger(h?.pid) && typeof h.token === 'string' ? h : undefined;
  } catch {
    return undefined;
  }
}

/** A taker that died between its claim and its swap leaves a claim; one older than this is void. */
const ABANDONED_CLAIM_MS = 30_000;

/**
 * An append-only NDJSON file of events waiting for the witness, plus the byte offset of the first
 * one not yet acknowledged. Appends are fsync'd before they count; the offset moves only after the
 * witness has committed a batch, so a crash in between resends it (idempotency keys make that safe).
 */
export class Spool {
  readonly file: string;
  private readonly offsetFile: string;
  private readonly lockFile: string;
  private offset = 0;
  /** Bytes of whole lines in the file; a failed append may leave more, cut off before the next one. */
  private size = 0;
  private torn = false;
  private locked = false;
  private readonly token = randomBytes(12).toString('hex');
  /** Events left unacknowledged by an earlier process, counted at open(): they precede this one's. */
  inherited = 0;

  constructor(
    readonly dir: string,
    readonly producer: string,
  ) {
    const safe = producer.replace(/[^A-Za-z0-9._-]/g, '_');
    this.file = path.join(dir, `${safe}.ndjson`);
    this.offsetFile = path.join(dir, `${safe}.offset`);
    this.lockFile = path.join(dir, `${safe}.lock`);
  }

  /**
   * Takes the spool for this process. The lock is taken atomically (our record, written whole to a
   * private file, hard-linked to the lock's name); one left by a dead process is taken over by
   * compare-and-swap as in src/state/lock.ts, never deleted and re-created: two processes finding
   * the same stale lock could otherwise each delete the other's fresh one and both write the spool.
   */
  async open(): Promise<void> {
    if (!this.locked) await this.lock();
    this.size = await fs.stat(this.file).then(
      (s) => s.size,
      () => 0,
    );
    const saved = await fs.readFile(this.offsetFile, 'utf8').then(
      (t) => Number(JSON.parse(t).offset) || 0,
      () => 0,
    );
    this.offset = Math.min(saved, this.size);
    if (this.size > this.offset) await this.countInherited();
  }

  private async lock(): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true });
    const me: SpoolHolder = { pid: process.pid, token: this.token };
    const mine = `${this.lockFile}.${this.token}.new`;
    await fs.writeFile(mine, JSON.stringify(me), { mode: 0o600 });
    try {
      // Bounded: each round takes the lock, fails naming a live holder, or saw the lock change hands.
      for (let round = 0; round < 100; round++) {
        try {
          await fs.link(mine, this.lockFile);
          this.locked = true;
          return;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        }
        const text = await fs.readFile(this.lockFile, 'utf8').catch(() => undefined);
        if (text === undefined) continue; // released in between
        const h = parseHolder(text);
        if (h && h.pid !== process.pid && isAlive(h.pid))
          throw new SpoolLockedError(`${this.file} is in use by pid ${h.pid}`);
        // Stale (or unreadable): claim exactly this content; only one taker can create the claim.
        const claim = `${this.lockFile}.${createHash('sha256').update(text).digest('hex').slice(0, 16)}.claim`;
        try {
          await fs.link(this.lockFile, claim);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'ENOENT') continue;
          if (code !== 'EEXIST') throw err;
          const st = await fs.stat(claim).catch(() => undefined);
          if (st && Date.now() - st.ctimeMs > ABANDONED_CLAIM_MS) await fs.unlink(claim).catch(() => {});
          else await new Promise((r) => setTimeout(r, 20));
          continue;
        }
        if ((await fs.readFile(claim, 'utf8').catch(() => undefined)) !== text) {
          // The lock changed between our read and our link: that claim names a live lock.
          await fs.unlink(claim).catch(() => {});
          continue;
        }
        await fs.rename(mine, this.lockFile);
        await fs.unlink(claim).catch(() => {});
        this.locked = true;
        return;
      }
      throw new SpoolLockedError(`the lock of ${this.file} keeps changing hands`);
    } finally {
      await fs.unlink(mine).catch(() => {});
    }
  }

  private async countInherited(): Promise<void> {
    const h = await fs.open(this.file, 'r');
    let last = 0x0a;
    try {
      const buf = Buffer.alloc(1 << 20);
      for (let pos = this.offset; pos < this.size; ) {
        const { bytesRead } = await h.read(buf, 0, Math.min(buf.length, this.size - pos), pos);
        if (bytesRead === 0) break;
        const chunk = buf.subarray(0, bytesRead);
        for (let i = chunk.indexOf(0x0a); i >= 0; i = chunk.indexOf(0x0a, i + 1)) this.inherited += 1;
        last = chunk[bytesRead - 1]!;
        pos += bytesRead;
      }
    } finally {
      await h.close();
    }
    // A crash mid-append leaves a torn last line: end it so the next append starts a line of its own.
    if (last !== 0x0a) {
      this.inherited += 1;
      await this.append([], '\n');
    }
  }

  get pending(): boolean {
    return this.offset < this.size;
  }

  /**
   * Appends and fsyncs; only then do the events count as spooled. On failure (disk full, I/O error)
   * nothing counts and the caller keeps the events; whatever part reached the file is cut off before
   * the next append, so the file never holds half a line between whole ones.
   */
  async append(events: object[], prefix = ''): Promise<void> {
    if (!this.locked) throw new Error(`spool ${this.file} is not open`);
    const text = prefix + events.map((e) => `${JSON.stringify(e)}\n`).join('');
    if (text === '') return;
    const h = await fs.open(this.file, 'a', 0o600);
    try {
      if (this.torn) {
        if ((await h.stat()).size > this.size) await h.truncate(this.size);
        this.torn = false;
      }
      try {
        await h.write(text);
        await h.sync();
      } catch (err) {
        this.torn = true;
        throw err;
      }
    } finally {
      await h.close().catch(() => {});
    }
    this.size += Buffer.byteLength(text);
  }

  /** Up to `max` events from the unacknowledged head, the offset just past them, and the lines read. */
  async peek(
    max: number,
    maxBytes = 900 * 1024,
  ): Promise<{ events: Record<string, unknown>[]; end: number; lines: number }> {
    const h = await fs.open(this.file, 'r');
    try {
      const want = Math.min(this.size - this.offset, maxBytes + 64 * 1024);
      const buf = Buffer.alloc(want);
      const { bytesRead } = await h.read(buf, 0, want, this.offset);
      const events: Record<string, unknown>[] = [];
      let pos = 0;
      let lines = 0;
      while (events.length < max) {
        const nl = buf.indexOf(0x0a, pos);
        if (nl < 0 || nl >= bytesRead) break;
        if (events.length > 0 && nl > maxBytes) break;
        const line = buf.subarray(pos, nl).toString('utf8');
        pos = nl + 1;
        lines += 1;
        try {
          events.push(JSON.parse(line));
        } catch {
          // A torn line from a crash mid-append: skip it; it was never acknowledged to the producer.
        }
      }
      return { events, end: this.offset + pos, lines };
    } finally {
      await h.close();
    }
  }

  /**
   * Marks everything before `to` acknowledged. The new offset holds in memory at once; if it cannot
   * be written down this throws, and a later process resends those events (their idempotency keys
   * make that harmless).
   */
  async advance(to: number): Promise<void> {
    this.offset = to;
    if (this.offset >= this.size) {
      try {
        await fs.unlink(this.file);
      } catch (err) {
        // Still there: keep counting from its end rather than overwrite what we think is empty.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
          await this.saveOffset().catch(() => {});
          throw err;
        }
      }
      await fs.unlink(this.offsetFile).catch(() => {});
      this.offset = 0;
      this.size = 0;
      this.torn = false;
      return;
    }
    await this.saveOffset();
  }

  private async saveOffset(): Promise<void> {
    const tmp = `${this.offsetFile}.tmp`;
    const h = await fs.open(tmp, 'w', 0o600);
    try {
      await h.writeFile(JSON.stringify({ offset: this.offset }));
      await h.sync();
    } finally {
      await h.close();
    }
    await fs.rename(tmp, this.offsetFile);
  }

  /** Releases the lock, if it is still ours (one taken over while we looked dead is someone else's). */
  async close(): Promise<void> {
    if (!this.locked) return;
    this.locked = false;
    const text = await fs.readFile(this.lockFile, 'utf8').catch(() => undefined);
    if (text !== undefined && parseHolder(text)?.token === this.token)
      await fs.unlink(this.lockFile).catch(() => {});
  }

  get isOpen(): boolean {
    return this.locked;
  }
}

export interface SpoolInfo {
  producer: string;
  file: string;
  pending_events: number;
  pending_bytes: number;
  locked_by: number | null;
}

/** What waits in a spool directory, without taking any lock. */
export async function listSpools(dir: string): Promise<SpoolInfo[]> {
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  const out: SpoolInfo[] = [];
  for (const name of names.filter((n) => n.endsWith('.ndjson')).sort()) {
    const producer = name.slice(0, -'.ndjson'.length);
    const file = path.join(dir, name);
    const text = await fs.readFile(file, 'utf8').catch(() => '');
    const offset = await fs.readFile(path.join(dir, `${producer}.offset`), 'utf8').then(
      (t) => Number(JSON.parse(t).offset) || 0,
      () => 0,
    );
    const rest = Buffer.from(text).subarray(offset).toString('utf8');
    const lock = await fs.readFile(path.join(dir, `${producer}.lock`), 'utf8').catch(() => '');
    const pid = parseHolder(lock)?.pid ?? 0;
    out.push({
      producer,
      file,
      pending_events: rest.split('\n').filter(Boolean).length,
      pending_bytes: Buffer.byteLength(rest),
      locked_by: pid && isAlive(pid) ? pid : null,
    });
  }
  return out;
}
