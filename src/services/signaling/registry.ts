// Who is registered where, and what the agents report about their connections. One instance keeps
// this in memory; a cluster (a later issue) implements the same interfaces over Redis so that
// instances share the registry and relay frames to agents held by another instance.
import type { CandidateType, ConnectionState } from '../../protocol/signaling.js';

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
  metadata: Record<string, unknown>;
  /** Registration order, where the registry keeps one (Redis): set by claim, not by the caller. */
  seq?: number;
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
  | { status: 'ok'; replaced: AgentRecord | undefined }
  | { status: 'taken'; holder: AgentRecord };

export interface MeshRegistry {
  /**
   * Registers `rec`. An agent id held by another public key is refused; the same key from a new
   * session replaces the old one (a reconnecting agent), and the holder's own session may change key.
   */
  claim(rec: AgentRecord): Promise<ClaimResult>;
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

export class MemoryRegistry implements MeshRegistry {
  private readonly agents = new Map<string, AgentRecord>();
  private readonly meshes = new Map<string, Set<string>>();
  private readonly reports = new Map<string, ConnectionReport>();

  async claim(rec: AgentRecord): Promise<ClaimResult> {
    const holder = this.agents.get(rec.agentId);
    if (holder && holder.publicKey !== rec.publicKey && holder.sessionId !== rec.sessionId)
      return { status: 'taken', holder };
    if (holder) this.meshes.get(holder.mesh)?.delete(holder.agentId);
    this.agents.set(rec.agentId, rec);
    const members = this.meshes.get(rec.mesh) ?? new Set<string>();
    members.add(rec.agentId);
    this.meshes.set(rec.mesh, members);
    return { status: 'ok', replaced: holder && holder.sessionId !== rec.sessionId ? holder : undefined };
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
