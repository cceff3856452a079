// Signaling WebSocket frames (CONTRACT §1): one JSON object per text frame, each with a string `type`.
import { isAgentId } from './ids.js';

export const PROTOCOL_VERSION = 1;
export const FRAME_MAX_BYTES = 64 * 1024;

export const CLOSE = {
  normal: 1000,
  serviceRestart: 1012,
  malformed: 4400,
  unauthorized: 4401,
  registrationTimeout: 4408,
  replaced: 4409,
  /** Extension: the agent id is bound to another key (reason `id_key_mismatch`); see docs/security.md "Identity". */
  idKeyMismatch: 4409,
  rateLimited: 4429,
} as const;

export type ConnectionState = 'new' | 'connecting' | 'connected' | 'disconnected' | 'failed' | 'closed';
export type CandidateType = 'host' | 'srflx' | 'prflx' | 'relay';

/** Registration metadata: a flat object of bounded size (docs/signaling.md: metadata limits). */
export type MetadataValue = string | number | boolean | null;
export type RegisterMetadata = Record<string, MetadataValue>;

export const METADATA_LIMITS = {
  /** Keys in the object. */
  maxKeys: 32,
  /** Characters of a key: `A-Za-z0-9._:-`. */
  maxKeyLength: 64,
  /** Characters of a string value. */
  maxStringLength: 256,
  /** Bytes of the whole object as compact JSON. */
  maxBytes: 4096,
} as const;

/**
 * Extension: a key rotation signed by the key it replaces. `signature` is the previous key's
 * Ed25519 signature over `rotationStatement(agent_id, public_key)`; chains (`rotations`) list the
 * proofs oldest first, so a peer that pinned any earlier key can walk to the current one.
 */
export interface RotationProof {
  previous_key: string;
  public_key: string;
  signature: string;
}

export type ClientFrame =
  | {
      type: 'register';
      agent_id: string;
      public_key: string;
      signature: string;
      metadata: RegisterMetadata;
      /** Extension: presented when the agent's id is still bound to the key it rotated away from. */
      rotation?: RotationProof;
    }
  | { type: 'challenge' }
  | { type: 'offer' | 'answer'; to: string; sdp: string; session?: string }
  | { type: 'ice-candidate'; to: string; candidate: Record<string, unknown> }
  | { type: 'bye'; to: string }
  | {
      type: 'connection-state';
      peer_id: string;
      state: ConnectionState;
      candidate_type: CandidateType | null;
      rtt_ms: number | null;
      /** Heartbeat pings unanswered, of those sent (optional; null before the first). */
      loss_ratio?: number | null;
    }
  | { type: 'keys-rotated'; rotation_id: string }
  | { type: 'metrics-report'; report: AgentMetricsReport };

/** Cumulative counters and current gauges an agent reports; the server turns them into webrtc_* metrics. */
export interface AgentMetricsReport {
  messages_sent?: number;
  messages_received?: number;
  message_errors?: number;
  signature_failures?: number;
  dtls_failures?: number;
  bytes_per_second?: number;
  memory_bytes?: number;
  /** CPU seconds (user + system) the agent's process has used, cumulative. */
  cpu_seconds?: number;
  /** Times the agent's witness presented an unaccepted key (cumulative). */
  witness_key_changed?: number;
}

export class FrameError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const STATES = new Set(['new', 'connecting', 'connected', 'disconnected', 'failed', 'closed']);
const CANDIDATES = new Set(['host', 'srflx', 'prflx', 'relay']);
const B64URL = /^[A-Za-z0-9_-]+$/;

function str(f: Record<string, unknown>, key: string, max: number): string {
  const v = f[key];
  if (typeof v !== 'string' || v.length === 0 || v.length > max)
    throw new FrameError('invalid_frame', `${key}: required string of 1-${max} characters`);
  return v;
}

const METADATA_KEY = /^[A-Za-z0-9._:-]+$/;

/**
 * Registration metadata is shown by /agents and /peers and stored in the cluster registry: a flat
 * object of scalars, bounded, so that no agent can make those answers unserialisable or huge (a
 * value nested thousands of levels deep once turned both into 500s). Only the top level is walked,
 * so checking costs O(keys) whatever the input.
 */
export function checkMetadata(value: unknown): RegisterMetadata {
  const L = METADATA_LIMITS;
  const rule = `metadata must be a flat object of at most ${L.maxKeys} keys (${L.maxKeyLength} characters of A-Z a-z 0-9 . _ : -) whose values are strings (at most ${L.maxStringLength} characters), numbers, booleans or null, ${L.maxBytes} bytes at most as JSON`;
  const refuse = (what: string): never => {
    throw new FrameError('invalid_metadata', `${what}: ${rule}`);
  };
  if (value === undefined) return {};
  if (!value || typeof value !== 'object' || Array.isArray(value)) return refuse('metadata is not an object');
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > L.maxKeys) refuse(`metadata has ${entries.length} keys`);
  for (const [k, v] of entries) {
    if (k.length === 0 || k.length > L.maxKeyLength || !METADATA_KEY.test(k))
      refuse(`metadata key ${JSON.stringify(k.slice(0, L.maxKeyLength))} is not allowed`);
    if (v === null || typeof v === 'boolean') continue;
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) refuse(`metadata.${k} is not a finite number`);
      continue;
    }
    if (typeof v === 'string') {
      if (v.length > L.maxStringLength) refuse(`metadata.${k} is ${v.length} characters long`);
      continue;
    }
    refuse(
      `metadata.${k} is ${Array.isArray(v) ? 'an array' : `a${typeof v === 'object' ? 'n object' : ` ${typeof v}`}`}`,
    );
  }
  const bytes = Buffer.byteLength(JSON.stringify(value));
  if (bytes > L.maxBytes) refuse(`metadata is ${bytes} bytes`);
  return value as RegisterMetadata;
}

function b64urlField(f: Record<string, unknown>, key: string, max: number, where: string): string {
  const v = f[key];
  if (typeof v !== 'string' || v.length === 0 || v.length > max || !B64URL.test(v))
    throw new FrameError('invalid_frame', `${where}.${key}: required base64url string`);
  return v;
}

function checkRotation(value: unknown, publicKey: string): RotationProof | undefined {
  if (value === undefined) return undefined;
  if (!value || typeof value !== 'object' || Array.isArray(value))
    throw new FrameError('invalid_frame', 'rotation: must be an object {previous_key, signature}');
  const r = value as Record<string, unknown>;
  return {
    previous_key: b64urlField(r, 'previous_key', 64, 'rotation'),
    public_key: publicKey,
    signature: b64urlField(r, 'signature', 128, 'rotation'),
  };
}

function peer(f: Record<string, unknown>, key: string): string {
  const v = f[key];
  if (!isAgentId(v)) throw new FrameError('invalid_frame', `${key}: must be an agent id`);
  return v;
}

/** The counters a `metrics-report` frame may carry; any other field is ignored. */
export const METRICS_REPORT_FIELDS = [
  'messages_sent',
  'messages_received',
  'message_errors',
  'signature_failures',
  'dtls_failures',
  'bytes_per_second',
  'memory_bytes',
  'cpu_seconds',
  'witness_key_changed',
] as const;

/** Parses one text frame; throws FrameError('malformed_json' | 'invalid_frame' | 'unknown_type'). */
export function parseClientFrame(text: string): ClientFrame {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new FrameError('malformed_json', 'frame is not valid JSON');
  }
  if (!value || typeof value !== 'object' || Array.isArray(value))
    throw new FrameError('invalid_frame', 'frame must be a JSON object');
  const f = value as Record<string, unknown>;
  switch (f.type) {
    case 'register': {
      const publicKey = str(f, 'public_key', 64);
      const signature = str(f, 'signature', 128);
      if (!B64URL.test(publicKey) || !B64URL.test(signature))
        throw new FrameError('invalid_frame', 'public_key and signature must be base64url');
      const rotation = checkRotation(f.rotation, publicKey);
      return {
        type: 'register',
        agent_id: peer(f, 'agent_id'),
        public_key: publicKey,
        signature,
        metadata: checkMetadata(f.metadata),
        ...(rotation ? { rotation } : {}),
      };
    }
    case 'challenge':
      return { type: 'challenge' };
    case 'offer':
    case 'answer': {
      // Extension: `session` ties an answer to the offer it answers (agents echo it); optional, so
      // peers that do not know it (a browser) still work.
      const session = f.session;
      if (session !== undefined && (typeof session !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(session)))
        throw new FrameError('invalid_frame', 'session: must be 1 to 64 of A-Z a-z 0-9 _ -');
      return {
        type: f.type,
        to: peer(f, 'to'),
        sdp: str(f, 'sdp', FRAME_MAX_BYTES),
        ...(session === undefined ? {} : { session }),
      };
    }
    case 'ice-candidate': {
      const c = f.candidate;
      if (!c || typeof c !== 'object' || Array.isArray(c))
        throw new FrameError('invalid_frame', 'candidate: must be an object');
      return { type: 'ice-candidate', to: peer(f, 'to'), candidate: c as Record<string, unknown> };
    }
    case 'bye':
      return { type: 'bye', to: peer(f, 'to') };
    case 'connection-state': {
      if (typeof f.state !== 'string' || !STATES.has(f.state))
        throw new FrameError('invalid_frame', `state: one of ${[...STATES].join(', ')}`);
      const ct = f.candidate_type ?? null;
      if (ct !== null && (typeof ct !== 'string' || !CANDIDATES.has(ct)))
        throw new FrameError('invalid_frame', 'candidate_type: host, srflx, prflx or relay');
      const rtt = f.rtt_ms ?? null;
      if (rtt !== null && (typeof rtt !== 'number' || !Number.isFinite(rtt) || rtt < 0 || rtt > 600_000)) {
        throw new FrameError('invalid_frame', 'rtt_ms: a number of milliseconds');
      }
      const loss = f.loss_ratio ?? null;
      if (loss !== null && (typeof loss !== 'number' || !(loss >= 0 && loss <= 1)))
        throw new FrameError('invalid_frame', 'loss_ratio: a number from 0 to 1');
      return {
        type: 'connection-state',
        peer_id: peer(f, 'peer_id'),
        state: f.state as ConnectionState,
        candidate_type: ct as CandidateType | null,
        rtt_ms: rtt as number | null,
        loss_ratio: loss as number | null,
      };
    }
    case 'keys-rotated':
      return { type: 'keys-rotated', rotation_id: str(f, 'rotation_id', 128) };
    case 'metrics-report': {
      const report: AgentMetricsReport = {};
      for (const k of METRICS_REPORT_FIELDS) {
        const v = f[k];
        if (v === undefined) continue;
        if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
          throw new FrameError('invalid_frame', `${k}: a non-negative number`);
        report[k] = v;
      }
      return { type: 'metrics-report', report };
    }
    default:
      throw new FrameError(
        'unknown_type',
        `unknown frame type ${typeof f.type === 'string' ? JSON.stringify(f.type).slice(0, 40) : `(${typeof f.type === 'object' ? 'an object' : `a ${typeof f.type}`})`}`,
      );
  }
}

export function registerChallenge(nonce: string, agentId: string): Uint8Array {
  return new TextEncoder().encode(`ifmesh-register:${nonce}:${agentId}`);
}

/**
 * What the previous key signs to hand an agent id over to `newPublicKey` (base64url). Bound to the
 * id and the new key, not to a nonce: it is a delegation the agent keeps in its key file and may
 * present again after a restart; replayed, it can only ever bind the id to the key it names.
 */
export function rotationStatement(agentId: string, newPublicKey: string): Uint8Array {
  return new TextEncoder().encode(`ifmesh-rotate:${agentId}:${newPublicKey}`);
}
