// Which key each agent id belongs to, and which keys are dead. An id is bound to the first key that
// registers it (or the allow-list's key), and stays bound after the agent leaves: a different key for
// a known id is refused (4409 id_key_mismatch) until an operator rebinds the id or the bound key
// signs a rotation to its successor. A key rotated away from (or rebound away from) is revoked and
// refused at registration under any id.
//
// Standalone, the store is an append-only log in the state directory
// (<state>/signaling-identities.ndjson) that every instance sharing the directory reads. In a cluster
// the bindings live in Redis (redis-registry.ts) and each instance with a state directory keeps this
// log as a mirror, so a Redis restarted empty does not forget them.
import {
  appendFileSync,
  closeSync,
  fstatSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import type { RotationProof } from '../../protocol/signaling.js';

export type BindingSource = 'first_use' | 'allow_list' | 'rotation' | 'rebind';

export interface KeyBinding {
  agent_id: string;
  public_key: string;
  key_id: string;
  bound_at: string;
  via: BindingSource;
  /** The last rotations that led to this key, oldest first (at most MAX_CHAIN). */
  rotations?: RotationProof[];
}

export interface Revocation {
  public_key: string;
  key_id: string;
  /** The id the key was bound to when it was revoked. */
  agent_id: string;
  revoked_at: string;
  reason: 'rotated' | 'rebound';
}

/** Rotations a binding remembers: a peer that missed more than this many must be restarted. */
export const MAX_CHAIN = 8;

export type BindDecision =
  | { kind: 'revoked'; revocation: Revocation }
  | { kind: 'mismatch'; binding: KeyBinding }
  | { kind: 'ok'; binding: KeyBinding; changed: boolean; rotated?: Revocation };

export interface BindRequest {
  agentId: string;
  publicKey: string;
  keyId: string;
  at: string;
  /** How a new binding is made (the allow-list named this pair, or first use). */
  via: 'first_use' | 'allow_list';
  /** A rotation proof the caller has verified: the previous key signed the hand-over to `publicKey`. */
  rotation?: RotationProof | undefined;
}

/**
 * The decision every registry makes, in one place (redis-registry.ts's Lua script mirrors it):
 * revoked key → refused; unbound id → bound now; bound to this key → fine; bound to another key →
 * refused, unless a verified rotation names the bound key as its previous one (then the binding
 * moves and the previous key is revoked).
 */
export function decideBinding(
  current: KeyBinding | undefined,
  revocationOf: (key: string) => Revocation | undefined,
  r: BindRequest,
  keyIdOf: (publicKey: string) => string,
): BindDecision {
  const revoked = revocationOf(r.publicKey);
  if (revoked) return { kind: 'revoked', revocation: revoked };
  if (!current)
    return {
      kind: 'ok',
      changed: true,
      binding: { agent_id: r.agentId, public_key: r.publicKey, key_id: r.keyId, bound_at: r.at, via: r.via },
    };
  if (current.public_key === r.publicKey) return { kind: 'ok', binding: current, changed: false };
  if (!r.rotation || r.rotation.previous_key !== current.public_key || r.rotation.public_key !== r.publicKey)
    return { kind: 'mismatch', binding: current };
  const rotated: Revocation = {
    public_key: current.public_key,
    key_id: current.key_id || keyIdOf(current.public_key),
    agent_id: r.agentId,
    revoked_at: r.at,
    reason: 'rotated',
  };
  return {
    kind: 'ok',
    changed: true,
    rotated,
    binding: {
      agent_id: r.agentId,
      public_key: r.publicKey,
      key_id: r.keyId,
      bound_at: r.at,
      via: 'rotation',
      rotations: [...(current.rotations ?? []), r.rotation].slice(-MAX_CHAIN),
    },
  };
}

/** One line of the identities log. */
export type IdentityEntry =
  /** `replace`: the binding replaces whatever the log holds (a mirror copying what Redis has). */
  { op: 'bind'; binding: KeyBinding; replace?: boolean } | { op: 'revoke'; revocation: Revocation };

/**
 * Bindings and revocations, in memory or in an append-only log (one JSON entry per line, 0600)
 * shared by the instances of one state directory. A change is one appended line, so it costs the
 * same for the ten-thousandth agent as for the first, and is written before the registration is
 * answered. Every instance replays the log in file order, under one rule: a first binding
 * (first use, allow-list) counts only if the id is still unbound then, while a rotation or a rebind
 * replaces the binding. So when two instances bind one id at once, the earlier line wins for every
 * reader, and the instance whose line lost sees it on re-reading and refuses its agent. The log is
 * compacted (rewritten whole, tmp + rename) when an instance opens it and it has grown redundant.
 */
export class IdentityFile {
  private bindingsById = new Map<string, KeyBinding>();
  private revokedByKey = new Map<string, Revocation>();
  /** Where the replay stopped: the file's identity and the offset of the next unread line. */
  private ino = -1;
  private offset = 0;
  private lines = 0;

  constructor(readonly file?: string) {
    if (!file) return;
    try {
      this.refresh(true);
      this.compact();
    } catch (err) {
      throw new Error(
        `identity bindings ${file} are unreadable (${(err as Error).message}): fix the file, or move it away to forget every binding and revocation`,
      );
    }
  }

  private apply(e: IdentityEntry): void {
    if (e.op === 'revoke') {
      if (!this.revokedByKey.has(e.revocation.public_key))
        this.revokedByKey.set(e.revocation.public_key, e.revocation);
      return;
    }
    const b = e.binding;
    const first = b.via === 'first_use' || b.via === 'allow_list';
    if (first && !e.replace && this.bindingsById.has(b.agent_id)) return;
    this.bindingsById.set(b.agent_id, b);
  }

  /** Replays the lines appended since the last read (all of them if the file was replaced). */
  private refresh(strict = false): void {
    if (!this.file) return;
    let fd: number;
    try {
      fd = openSync(this.file, 'r');
    } catch {
      return; // not written yet (or moved away while running: what is loaded stays)
    }
    try {
      const st = fstatSync(fd);
      if (st.ino !== this.ino || st.size < this.offset) {
        this.bindingsById = new Map();
        this.revokedByKey = new Map();
        this.ino = st.ino;
        this.offset = 0;
        this.lines = 0;
      }
      if (st.size === this.offset) return;
      const buf = Buffer.alloc(st.size - this.offset);
      const n = readSync(fd, buf, 0, buf.length, this.offset);
      const text = buf.subarray(0, n).toString('utf8');
      const end = text.lastIndexOf('\n');
      if (end < 0) return; // a line still being written
      for (const line of text.slice(0, end).split('\n')) {
        if (!line.trim()) continue;
        let e: IdentityEntry;
        try {
          e = JSON.parse(line) as IdentityEntry;
          if (e.op !== 'bind' && e.op !== 'revoke')
            throw new Error(`unknown op ${String((e as { op?: unknown }).op)}`);
        } catch (err) {
          // At start a broken log is fatal (trusting every key would silently undo every binding);
          // later, a bad line is skipped rather than taking the instance down.
          if (strict) throw new Error(`line ${this.lines + 1}: ${(err as Error).message}`);
          this.lines += 1;
          continue;
        }
        this.apply(e);
        this.lines += 1;
      }
      this.offset += Buffer.byteLength(text.slice(0, end + 1));
    } finally {
      closeSync(fd);
    }
  }

  /** Rewrites a log with more lines than live entries as those entries alone (tmp + rename). */
  private compact(): void {
    if (!this.file) return;
    const live = this.bindingsById.size + this.revokedByKey.size;
    if (this.lines <= Math.max(64, live * 2)) return;
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, this.snapshot(), { mode: 0o600 });
    renameSync(tmp, this.file);
    this.ino = -1;
    this.refresh(true);
  }

  private snapshot(): string {
    const out: string[] = [];
    for (const revocation of this.revokedByKey.values())
      out.push(JSON.stringify({ op: 'revoke', revocation }));
    for (const binding of this.bindingsById.values()) out.push(JSON.stringify({ op: 'bind', binding }));
    return out.length ? `${out.join('\n')}\n` : '';
  }

  binding(agentId: string): KeyBinding | undefined {
    this.refresh();
    return this.bindingsById.get(agentId);
  }

  revocation(publicKey: string): Revocation | undefined {
    this.refresh();
    return this.revokedByKey.get(publicKey);
  }

  /**
   * Records `entries` (one append) and replays the log up to them; read the binding again
   * afterwards: another instance's earlier first binding of the same id wins over this one's.
   */
  commit(entries: IdentityEntry[]): void {
    if (entries.length === 0) return;
    if (!this.file) {
      for (const e of entries) this.apply(e);
      return;
    }
    mkdirSync(path.dirname(this.file), { recursive: true });
    appendFileSync(this.file, `${entries.map((e) => JSON.stringify(e)).join('\n')}\n`, { mode: 0o600 });
    this.refresh();
  }

  bindings(): KeyBinding[] {
    this.refresh();
    return [...this.bindingsById.values()];
  }

  revocations(): Revocation[] {
    this.refresh();
    return [...this.revokedByKey.values()];
  }
}
