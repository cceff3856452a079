// Refused identities: an agent id and the public key it last registered with. Kept in a JSON file
// (<state>/signaling-blocklist.json) that every instance sharing the state directory reads: a change
// made through one instance is seen by the others at their next registration (the file's mtime is
// checked there), so a blocked agent cannot come back through another instance either.
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface BlockEntry {
  agent_id: string;
  /** The key the agent held when it was blocked (null when it was not registered then). */
  public_key: string | null;
  key_id: string | null;
  reason: string;
  blocked_at: string;
}

export class BlockList {
  private entries = new Map<string, BlockEntry>();
  private mtimeMs = -1;

  /** Without a file the list lives in memory only (tests, a server with no state directory). */
  private started = false;

  constructor(private readonly file?: string) {
    this.refresh();
    this.started = true;
  }

  /** Re-reads the file when another instance changed it. A missing file is an empty list. */
  private refresh(): void {
    if (!this.file) return;
    let mtime: number;
    try {
      mtime = statSync(this.file).mtimeMs;
    } catch {
      this.entries.clear();
      this.mtimeMs = -1;
      return;
    }
    if (mtime === this.mtimeMs) return;
    let parsed: { blocked?: BlockEntry[] };
    try {
      parsed = JSON.parse(readFileSync(this.file, 'utf8')) as { blocked?: BlockEntry[] };
      if (!Array.isArray(parsed.blocked)) throw new Error('no "blocked" array');
    } catch (err) {
      // At start a broken list is fatal (refusing nobody would silently lift every block); later,
      // a half-edited file keeps the entries already loaded until it reads again.
      if (this.mtimeMs === -1 && this.entries.size === 0 && !this.started)
        throw new Error(
          `block list ${this.file} is unreadable (${(err as Error).message}): fix it, or remove it to lift every block`,
        );
      return;
    }
    this.entries = new Map(parsed.blocked.map((e) => [e.agent_id, e]));
    this.mtimeMs = mtime;
  }

  private persist(): void {
    if (!this.file) return;
    mkdirSync(path.dirname(this.file), { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify({ blocked: [...this.entries.values()] }, null, 2)}\n`, {
      mode: 0o600,
    });
    renameSync(tmp, this.file);
    this.mtimeMs = statSync(this.file).mtimeMs;
  }

  /** The entry refusing this identity: its id, or the key it was blocked with under any id. */
  match(agentId: string, publicKey: string): BlockEntry | undefined {
    this.refresh();
    const byId = this.entries.get(agentId);
    if (byId) return byId;
    for (const e of this.entries.values()) if (e.public_key && e.public_key === publicKey) return e;
    return undefined;
  }

  add(entry: BlockEntry): BlockEntry {
    this.refresh();
    const previous = this.entries.get(entry.agent_id);
    // Blocking again keeps the key already on record if the agent is not registered now.
    const merged = { ...entry, public_key: entry.public_key ?? previous?.public_key ?? null };
    merged.key_id = entry.key_id ?? previous?.key_id ?? null;
    this.entries.set(entry.agent_id, merged);
    this.persist();
    return merged;
  }

  remove(agentId: string): BlockEntry | undefined {
    this.refresh();
    const e = this.entries.get(agentId);
    if (!e) return undefined;
    this.entries.delete(agentId);
    this.persist();
    return e;
  }

  list(): BlockEntry[] {
    this.refresh();
    return [...this.entries.values()];
  }
}
