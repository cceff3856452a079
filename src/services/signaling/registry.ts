// Who is registered where, and what the agents report about their connections. One instance keeps
// this in memory; a cluster (a later issue) implements the same interfaces over Redis so that
// instances share the registry and relay frames to agents held by another instance.
import { fromBase64url, keyId } from '../../crypto/ed25519.js';
import type {
  CandidateType,
  ConnectionState,
  RegisterMetadata,
  RotationProof,
} from '../../protocol/signaling.js';
import {
  type BindingSource,
  decideBinding,
  IdentityFile,
  type KeyBinding,
  type Revocation,
} from './identities.js';

export interface AgentRecord {
  agentId: string;
  publicKey: string;
  keyId: string;
  /** The session (socket) that holds the registration, unique across instances. */
  sessionId: string;
  instanceId: string;
  /** Agents see, announce to and relay with only agents of the same mesh ("default" unless named). */
  mesh: string;
  remote: string;
  connectedAt: string;
  metadata: RegisterMetadata;
  /** Registration order, where the registry keeps one (Redis): set by claim, not by the caller. */
  seq?: number;
  /** The binding's rotation chain when the claim was made (peers verify a changed key with it). */
  rotations?: RotationProof[];
}

export interface ConnectionReport {
  agent_id: string;
  peer_id: string;
  state: ConnectionState;
  candidate_type: CandidateType | null;
  rtt_ms: number | null;
  /** Heartbeat pings the agent sent this peer that got no pong (absent from older agents). */
  loss_ratio?: number | null;
  updated_at: string;
}

export type ClaimResult =
  | {
      status: 'ok';
      replaced: AgentRecord | undefined;
      /** The id's binding after the claim (absent from registries that keep none). */
      binding?: KeyBinding;
      /** The key this claim rotated away from, now revoked. */
      rotated?: Revocation;
    }
  | { status: 'taken'; reason: 'id_key_mismatch'; binding: KeyBinding }
  | { status: 'taken'; reason: 'key_revoked'; revocation: Revocation };

export interface ClaimOptions {
  /** A rotation proof the caller verified (the previous key signed the hand-over to this key). */
  rotation?: RotationProof | undefined;
  /** How an unbound id gets bound: first use, or an allow-list entry naming this id and key. */
  via?: 'first_use' | 'allow_list';
}

export type RebindResult =
  | {
      status: 'rebound';
      binding: KeyBinding;
      previous: KeyBinding | undefined;
      revoked: Revocation | undefined;
      /** The registration under the old key, which the caller disconnects and releases. */
      holder: AgentRecord | undefined;
    }
  | { status: 'revoked'; revocation: Revocation };

export interface MeshRegistry {
  /**
   * Registers `rec`. The id must be bound to `rec.publicKey` (an unbound id is bound now, for good);
   * a key bound elsewhere or revoked is refused (`taken`). The same key from a new session replaces
   * the old one (a reconnecting agent); so does a proven rotation, which also revokes the old key.
   */
  claim(rec: AgentRecord, opts?: ClaimOptions): Promise<ClaimResult>;
  /** The key an id is bound to. */
  binding(agentId: string): Promise<KeyBinding | undefined>;
  /** Every binding and revocation (the admin API lists them). */
  identities(): Promise<{ bindings: KeyBinding[]; revoked: Revocation[] }>;
  /** An operator binds `agentId` to `publicKey`; the previous key is revoked. */
  rebind(agentId: string, publicKey: string, at: string): Promise<RebindResult>;
  /** Removes the registration if `sessionId` still holds it; true when it did. */
  release(agentId: string, sessionId: string): Promise<boolean>;
  get(agentId: string): Promise<AgentRecord | undefined>;
  /** Every registered agent, or those of one mesh. */
  list(mesh?: string): Promise<AgentRecord[]>;
  count(): Promise<number>;
  /** Stores a report and returns the one it replaced. */
  report(r: ConnectionReport): Promise<ConnectionReport | undefined>;
  connections(): Promise<ConnectionReport[]>;
  /** Drops every report by or about an agent, returning them. */
  forget(agentId: string): Promise<ConnectionReport[]>;
}

/** Delivers a frame to the agent holding `agentId`, wherever it is connected. */
export interface Relay {
  /** False when no agent of that id is registered in `mesh`. */
  deliver(agentId: string, mesh: string, text: string): Promise<boolean>;
}

export const keyIdOf = (publicKey: string): string => keyId(fromBase64url(publicKey, 32, 'public_key'));

/** The registry of one standalone instance; bindings persist in `identities` (a file, or memory). */
export class MemoryRegistry implements MeshRegistry {
  private readonly agents = new Map<string, AgentRecord>();
  private readonly meshes = new Map<string, Set<string>>();
  private readonly reports = new Map<string, ConnectionReport>();

  constructor(readonly identityStore: IdentityFile = new IdentityFile()) {}

  async claim(rec: AgentRecord, opts: ClaimOptions = {}): Promise<ClaimResult> {
    const store = this.identityStore;
    const d = decideBinding(
      store.binding(rec.agentId),
      (k) => store.revocation(k),
      {
        agentId: rec.agentId,
        publicKey: rec.publicKey,
        keyId: rec.keyId,
        at: rec.connectedAt,
        via: opts.via ?? 'first_use',
        rotation: opts.rotation,
      },
      keyIdOf,
    );
    if (d.kind === 'revoked') return { status: 'taken', reason: 'key_revoked', revocation: d.revocation };
    if (d.kind === 'mismatch') return { status: 'taken', reason: 'id_key_mismatch', binding: d.binding };
    if (d.changed) {
      store.commit([
        ...(d.rotated ? [{ op: 'revoke' as const, revocation: d.rotated }] : []),
        { op: 'bind', binding: d.binding },
      ]);
      // Another instance sharing the log may have bound the id first: its line wins.
      const now = store.binding(rec.agentId);
      if (now && now.public_key !== rec.publicKey)
        return { status: 'taken', reason: 'id_key_mismatch', binding: now };
    }
    // The holder, if any, is replaced: its key is the bound one (a reconnect) or a superseded one.
    const holder = this.agents.get(rec.agentId);
    if (holder) this.meshes.get(holder.mesh)?.delete(holder.agentId);
    const stored = d.binding.rotations?.length ? { ...rec, rotations: d.binding.rotations } : rec;
    this.agents.set(rec.agentId, stored);
    const members = this.meshes.get(rec.mesh) ?? new Set<string>();
    members.add(rec.agentId);
    this.meshes.set(rec.mesh, members);
    return {
      status: 'ok',
      replaced: holder && holder.sessionId !== rec.sessionId ? holder : undefined,
      binding: d.binding,
      ...(d.rotated ? { rotated: d.rotated } : {}),
    };
  }

  async binding(agentId: string): Promise<KeyBinding | undefined> {
    return this.identityStore.binding(agentId);
  }

  async identities(): Promise<{ bindings: KeyBinding[]; revoked: Revocation[] }> {
    return { bindings: this.identityStore.bindings(), revoked: this.identityStore.revocations() };
  }

  async rebind(agentId: string, publicKey: string, at: string): Promise<RebindResult> {
    const store = this.identityStore;
    const dead = store.revocation(publicKey);
    if (dead) return { status: 'revoked', revocation: dead };
    const previous = store.binding(agentId);
    const holder = this.agents.get(agentId);
    if (previous?.public_key === publicKey)
      return {
        status: 'rebound',
        binding: previous,
        previous,
        revoked: undefined,
        holder: holder && holder.publicKey !== publicKey ? holder : undefined,
      };
    const binding: KeyBinding = rebinding(agentId, publicKey, at);
    const revoked = previous ? revocationOf(previous, at) : undefined;
    store.commit([
      ...(revoked ? [{ op: 'revoke' as const, revocation: revoked }] : []),
      { op: 'bind', binding },
    ]);
    return { status: 'rebound', binding, previous, revoked, holder };
  }

  async release(agentId: string, sessionId: string): Promise<boolean> {
    const rec = this.agents.get(agentId);
    if (rec?.sessionId !== sessionId) return false;
    this.agents.delete(agentId);
    const members = this.meshes.get(rec.mesh);
    members?.delete(agentId);
    if (members?.size === 0) this.meshes.delete(rec.mesh);
    return true;
  }

  async get(agentId: string): Promise<AgentRecord | undefined> {
    return this.agents.get(agentId);
  }

  async list(mesh?: string): Promise<AgentRecord[]> {
    if (mesh === undefined) return [...this.agents.values()];
    return [...(this.meshes.get(mesh) ?? [])].map((id) => this.agents.get(id)!);
  }

  async count(): Promise<number> {
    return this.agents.size;
  }

  async report(r: ConnectionReport): Promise<ConnectionReport | undefined> {
    const key = `${r.agent_id}\u0000${r.peer_id}`;
    const previous = this.reports.get(key);
    this.reports.set(key, r);
    return previous;
  }

  async connections(): Promise<ConnectionReport[]> {
    return [...this.reports.values()];
  }

  async forget(agentId: string): Promise<ConnectionReport[]> {
    const gone: ConnectionReport[] = [];
    for (const [key, r] of this.reports) {
      if (r.agent_id === agentId || r.peer_id === agentId) {
        gone.push(r);
        this.reports.delete(key);
      }
    }
    return gone;
  }
}

/** The binding an operator's rebind makes. */
export function rebinding(agentId: string, publicKey: string, at: string): KeyBinding {
  const via: BindingSource = 'rebind';
  return { agent_id: agentId, public_key: publicKey, key_id: keyIdOf(publicKey), bound_at: at, via };
}

/** The revocation of a binding's key when an operator rebinds its id. */
export function revocationOf(previous: KeyBinding, at: string): Revocation {
  return {
    public_key: previous.public_key,
    key_id: previous.key_id,
    agent_id: previous.agent_id,
    revoked_at: at,
    reason: 'rebound',
  };
}
