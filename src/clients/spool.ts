import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { isAlive } from '../exec/pid.js';

export class SpoolLockedError extends Error {}

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
  private size = 0;
  private locked = false;
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

  /** Takes the spool for this process; a lock left by a dead process is taken over. */
  async open(): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true });
    for (let attempt = 0; attempt < 2 && !this.locked; attempt++) {
      try {
        const h = await fs.open(
          this.lockFile,
          constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY,
          0o600,
        );
        await h.writeFile(String(process.pid));
        await h.close();
        this.locked = true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const pid = Number(await fs.readFile(this.lockFile, 'utf8').catch(() => ''));
        if (pid && pid !== process.pid && isAlive(pid))
          throw new SpoolLockedError(`${this.file} is in use by pid ${pid}`);
        await fs.unlink(this.lockFile).catch(() => {});
      }
    }
    if (!this.locked) throw new SpoolLockedError(`cannot lock ${this.file}`);
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

  /** Appends and fsyncs; only then do the events count as spooled. */
  async append(events: object[], prefix = ''): Promise<void> {
    const text = prefix + events.map((e) => `${JSON.stringify(e)}\n`).join('');
    if (text === '') return;
    const h = await fs.open(this.file, 'a', 0o600);
    try {
      await h.write(text);
      await h.sync();
    } finally {
      await h.close();
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

  async advance(to: number): Promise<void> {
    this.offset = to;
    if (this.offset >= this.size) {
      await fs.unlink(this.file).catch(() => {});
      await fs.unlink(this.offsetFile).catch(() => {});
      this.offset = 0;
      this.size = 0;
      return;
    }
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

  async close(): Promise<void> {
    if (this.locked) await fs.unlink(this.lockFile).catch(() => {});
    this.locked = false;
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
    const pid = Number(await fs.readFile(path.join(dir, `${producer}.lock`), 'utf8').catch(() => ''));
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
