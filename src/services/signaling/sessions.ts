import { randomBytes, randomUUID } from 'node:crypto';
import type { WebSocket } from 'ws';
import { fromBase64url, KeyFormatError, keyId, toBase64url, verifySignature } from '../../crypto/ed25519.js';
import {
  CLOSE,
  type ClientFrame,
  FRAME_MAX_BYTES,
  FrameError,
  PROTOCOL_VERSION,
  parseClientFrame,
  registerChallenge,
} from '../../protocol/signaling.js';
import { admit, refusal, TRY_AGAIN_LATER } from './admission.js';
import { RegistryUnavailableError } from './redis-registry.js';
import type { AgentRecord, ClaimResult } from './registry.js';
import type { MeshCore, Session } from './types.js';

export function newNonce(): string {
  return toBase64url(randomBytes(32));
}

export function openSession(core: MeshCore, ws: WebSocket, ip: string): Session {
  const now = core.now();
  const session: Session = {
    id: randomUUID(),
    ws,
    ip,
    nonce: newNonce(),
    nonceIssuedAt: now,
    nonceUsed: false,
    agentId: undefined,
    publicKey: undefined,
    mesh: 'default',
    alive: true,
    tokens: core.deps.rateLimit?.burst ?? 200,
    lastRefill: now,
    refused: 0,
    registerTimer: undefined,
  };
  core.sessions.add(session);
  core.send(session, { type: 'hello', nonce: session.nonce, protocol: PROTOCOL_VERSION });
  session.registerTimer = setTimeout(() => {
    if (!session.agentId)
      fail(
        core,
        session,
        'registration_timeout',
        'no register frame within the registration timeout',
        CLOSE.registrationTimeout,
      );
  }, core.deps.registerTimeoutMs ?? 10_000);
  ws.on('pong', () => {
    session.alive = true;
  });
  ws.on('message', (data, isBinary) => {
    void onMessage(core, session, data as Buffer, isBinary).catch((err) => {
      core.log('error', 'frame handling failed', { error: String(err), agent_id: session.agentId });
    });
  });
  ws.on('close', () => {
    closeSession(core, session).catch((err) => {
      core.log('error', 'session close failed', { error: String(err), agent_id: session.agentId });
    });
  });
  ws.on('error', () => {});
  return session;
}

function error(
  core: MeshCore,
  session: Session,
  code: string,
  message: string,
  extra: Record<string, unknown> = {},
): void {
  core.metrics.signalingErrors.inc({ code });
  core.send(session, { type: 'error', code, message, ...extra });
}

const unavailableLog = new WeakMap<MeshCore, { at: number; since: number }>();

/**
 * Says why registrations are refused as cluster_unavailable (the agent only hears "retry shortly"):
 * the cause, at most every 5 s, with how many were refused since the last line.
 */
function refusedUnavailable(core: MeshCore, err: RegistryUnavailableError): void {
  const now = core.now();
  const l = unavailableLog.get(core) ?? { at: Number.NEGATIVE_INFINITY, since: 0 };
  unavailableLog.set(core, l);
  l.since += 1;
  if (now - l.at < 5_000) return;
  core.log('error', 'registration refused: cluster_unavailable', { error: err.message, refused: l.since });
  l.at = now;
  l.since = 0;
}

/** Sends the error frame, then closes the socket with `closeCode`. */
function fail(core: MeshCore, session: Session, code: string, message: string, closeCode: number): void {
  error(core, session, code, message);
  if (closeCode === CLOSE.unauthorized) {
    core.metrics.unauthorized.inc();
    core.event({
      event: 'signaling_auth_failure',
      agent_id: session.agentId,
      severity: 'warning',
      metadata: { code, remote: session.ip, instance_id: core.deps.instanceId },
    });
  }
  session.ws.close(closeCode, code.slice(0, 120));
}

function rateLimited(core: MeshCore, session: Session): boolean {
  const rl = { burst: 200, perSecond: 100, disconnectAfter: 500, ...core.deps.rateLimit };
  const now = core.now();
  session.tokens = Math.min(rl.burst, session.tokens + ((now - session.lastRefill) / 1000) * rl.perSecond);
  session.lastRefill = now;
  if (session.tokens >= 1) {
    session.tokens -= 1;
    return false;
  }
  session.refused += 1;
  if (session.refused >= rl.disconnectAfter) {
    fail(
      core,
      session,
      'rate_limited',
      `more than ${rl.perSecond} frames/s for too long; disconnected`,
      CLOSE.rateLimited,
    );
  } else if (session.refused === 1 || session.refused % 100 === 0) {
    error(
      core,
      session,
      'rate_limited',
      `frame dropped: at most ${rl.perSecond} frames/s (burst ${rl.burst})`,
    );
  }
  return true;
}

async function onMessage(core: MeshCore, session: Session, data: Buffer, isBinary: boolean): Promise<void> {
  if (session.ws.readyState !== session.ws.OPEN) return;
  if (rateLimited(core, session)) return;
  if (isBinary) return fail(core, session, 'invalid_frame', 'frames must be JSON text', CLOSE.malformed);
  if (data.length > FRAME_MAX_BYTES)
    return fail(
      core,
      session,
      'frame_too_large',
      `frames are at most ${FRAME_MAX_BYTES} bytes`,
      CLOSE.malformed,
    );
  let frame: ClientFrame;
  try {
    frame = parseClientFrame(data.toString('utf8'));
  } catch (err) {
    if (err instanceof FrameError) return fail(core, session, err.code, err.message, CLOSE.malformed);
    throw err;
  }
  if (frame.type === 'register') return register(core, session, frame);
  if (frame.type === 'challenge') {
    session.nonce = newNonce();
    session.nonceIssuedAt = core.now();
    session.nonceUsed = false;
    return core.send(session, { type: 'hello', nonce: session.nonce, protocol: PROTOCOL_VERSION });
  }
  const from = session.agentId;
  if (!from) return error(core, session, 'not_registered', `register before sending ${frame.type}`);
  switch (frame.type) {
    case 'offer':
    case 'answer':
    case 'ice-candidate':
    case 'bye': {
      const { to, ...rest } = frame;
      // Extension: an offer carries its sender's registered key (and how it descends from earlier
      // ones), so a peer that missed the sender's agent-joined (a lost cluster announcement, a
      // reconnect between the two) can still pin the key and answer, instead of dropping the offer.
      const vouched =
        frame.type === 'offer' && session.publicKey
          ? {
              public_key: session.publicKey,
              ...(session.record?.rotations?.length ? { rotations: session.record.rotations } : {}),
            }
          : {};
      if (!(await core.relay.deliver(to, session.mesh, JSON.stringify({ ...rest, ...vouched, from })))) {
        error(core, session, 'unknown_peer', `no agent ${to} is registered`, { to });
      }
      return;
    }
    case 'connection-state': {
      const report = {
        agent_id: from,
        peer_id: frame.peer_id,
        state: frame.state,
        candidate_type: frame.candidate_type,
        rtt_ms: frame.rtt_ms,
        loss_ratio: frame.loss_ratio ?? null,
        updated_at: new Date(core.now()).toISOString(),
      };
      // Within the agent's own pairs and rates (report-guard.ts); dropped whole otherwise.
      const taken = await core.reports.connectionReport(session, report);
      if (!taken.ok) return;
      const previous = await core.registry.report(report);
      core.metrics.connectionReport(previous, taken.observeRtt ? report : { ...report, rtt_ms: null });
      return;
    }
    case 'keys-rotated': {
      const r = core.rotation;
      if (!r || r.rotation_id !== frame.rotation_id)
        return error(core, session, 'unknown_rotation', `no rotation ${frame.rotation_id} is under way`);
      if (!r.completed.has(from)) {
        r.completed.add(from);
        await core.cluster.rotationComplete(r.rotation_id, from);
        core.metrics.keyRotations.inc();
        core.event({
          event: 'srtp_key_rotated',
          agent_id: from,
          metadata: {
            rotation_id: r.rotation_id,
            key_id: session.publicKey ? keyId(fromBase64url(session.publicKey)) : null,
          },
        });
      }
      return;
    }
    case 'metrics-report':
      core.reports.metricsReport(from, frame.report);
      return;
  }
}

async function register(
  core: MeshCore,
  session: Session,
  f: Extract<ClientFrame, { type: 'register' }>,
): Promise<void> {
  const ttl = core.deps.nonceTtlMs ?? 30_000;
  if (session.nonceUsed)
    return fail(
      core,
      session,
      'nonce_used',
      'this nonce was already used; send {"type":"challenge"} for a new one',
      CLOSE.unauthorized,
    );
  if (core.now() - session.nonceIssuedAt > ttl)
    return fail(
      core,
      session,
      'nonce_expired',
      `the nonce is older than ${ttl / 1000} s`,
      CLOSE.unauthorized,
    );
  let publicKey: Uint8Array;
  let signature: Uint8Array;
  try {
    publicKey = fromBase64url(f.public_key, 32, 'public_key');
    signature = fromBase64url(f.signature, 64, 'signature');
  } catch (err) {
    if (err instanceof KeyFormatError)
      return fail(core, session, 'invalid_frame', err.message, CLOSE.malformed);
    throw err;
  }
  session.nonceUsed = true;
  if (!verifySignature(publicKey, registerChallenge(session.nonce, f.agent_id), signature)) {
    return fail(
      core,
      session,
      'bad_signature',
      `signature does not prove the key for ifmesh-register:<nonce>:${f.agent_id}`,
      CLOSE.unauthorized,
    );
  }
  // Rotation proof and allow-list (admission.ts); the binding itself is the registry's claim.
  const admitted = await admit(core, f);
  if ('code' in admitted) return fail(core, session, admitted.code, admitted.message, admitted.close);
  const { via, rotation } = admitted;
  const blocked = core.blocks.match(f.agent_id, f.public_key);
  if (blocked) {
    return fail(
      core,
      session,
      'blocked',
      `${f.agent_id} is blocked (${blocked.reason}); an operator can lift it with \`ifmesh agents unblock ${blocked.agent_id}\``,
      CLOSE.unauthorized,
    );
  }
  const mesh = f.metadata.mesh === undefined ? 'default' : f.metadata.mesh;
  if (typeof mesh !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(mesh)) {
    return fail(
      core,
      session,
      'invalid_frame',
      'metadata.mesh: 1-64 characters of A-Z a-z 0-9 . _ -',
      CLOSE.malformed,
    );
  }
  if (session.agentId && session.mesh !== mesh) {
    return fail(
      core,
      session,
      'mesh_changed',
      `this socket is registered in mesh ${session.mesh}`,
      CLOSE.unauthorized,
    );
  }
  if (session.agentId && session.agentId !== f.agent_id) {
    return fail(
      core,
      session,
      'agent_id_changed',
      `this socket is registered as ${session.agentId}`,
      CLOSE.unauthorized,
    );
  }
  const sameSocketRekey = session.agentId === f.agent_id && session.publicKey !== f.public_key;
  const record: AgentRecord = {
    agentId: f.agent_id,
    publicKey: f.public_key,
    keyId: keyId(publicKey),
    sessionId: session.id,
    instanceId: core.deps.instanceId,
    mesh,
    remote: session.ip,
    connectedAt: new Date(core.now()).toISOString(),
    metadata: f.metadata,
  };
  let result: ClaimResult;
  let done!: () => void;
  const inFlight = new Promise<void>((resolve) => {
    done = resolve;
  });
  const settle = () => {
    if (core.registering.get(f.agent_id) === inFlight) core.registering.delete(f.agent_id);
    done();
  };
  core.registering.set(f.agent_id, inFlight);
  try {
    // Subscribed to the mesh's announcements before claiming, so no later join is missed.
    await core.cluster.joinMesh(mesh);
    result = await core.registry.claim(record, { via, rotation });
  } catch (err) {
    settle();
    if (!(err instanceof RegistryUnavailableError)) throw err;
    refusedUnavailable(core, err);
    return fail(
      core,
      session,
      'cluster_unavailable',
      'the cluster registry is unreachable; retry shortly',
      TRY_AGAIN_LATER,
    );
  }
  if (result.status === 'taken') {
    settle();
    const refused = refusal(core, session.ip, f.agent_id, record.keyId, result);
    return fail(core, session, refused.code, refused.message, refused.close);
  }
  clearTimeout(session.registerTimer);
  const replacedLocal = core.local.get(f.agent_id);
  if (replacedLocal && replacedLocal !== session) {
    replacedLocal.agentId = undefined;
    core.meshes.get(replacedLocal.mesh)?.delete(replacedLocal);
    replacedLocal.ws.close(CLOSE.replaced, 'registered from another connection');
  }
  if (result.replaced) core.cluster.replaced(result.replaced);
  const rekey = sameSocketRekey || Boolean(result.rotated);
  const rotations = result.binding?.rotations?.length ? result.binding.rotations : undefined;
  session.agentId = f.agent_id;
  session.publicKey = f.public_key;
  session.mesh = mesh;
  session.record = rotations ? { ...record, rotations } : record;
  core.reports.registered(f.agent_id);
  core.local.set(f.agent_id, session);
  const members = core.meshes.get(mesh) ?? new Set();
  members.add(session);
  core.meshes.set(mesh, members);
  const registered = await core.registry.list(mesh).catch(() => [record]);
  // Where the registry orders registrations, list only earlier ones: with several instances two
  // agents can register at once, and each seeing the other would make both offer.
  const mine = registered.find((a) => a.agentId === f.agent_id && a.sessionId === session.id)?.seq;
  const peers = registered
    .filter((a) => a.agentId !== f.agent_id && (mine === undefined || a.seq === undefined || a.seq < mine))
    .map((a) => ({
      agent_id: a.agentId,
      public_key: a.publicKey,
      // Extension: how the key descends from earlier ones, for peers that pinned one of those.
      ...(a.rotations?.length ? { rotations: a.rotations } : {}),
    }));
  core.send(session, { type: 'registered', agent_id: f.agent_id, peers, instance_id: core.deps.instanceId });
  settle();
  core.announce(
    {
      type: 'agent-joined',
      agent_id: f.agent_id,
      public_key: f.public_key,
      ...(rekey ? { rekeyed: true } : {}),
      ...(rotations ? { rotations } : {}),
    },
    mesh,
    session,
  );
  if (result.rotated)
    core.event({
      event: 'agent_key_rotated',
      agent_id: f.agent_id,
      metadata: {
        key_id: keyId(publicKey),
        revoked_key_id: result.rotated.key_id,
        remote: session.ip,
        instance_id: core.deps.instanceId,
      },
    });
  core.metrics.registrations.inc();
  core.metrics.agents.set(core.local.size);
  core.event({
    event: rekey ? 'agent_rekeyed' : 'agent_registered',
    agent_id: f.agent_id,
    metadata: {
      key_id: keyId(publicKey),
      remote: session.ip,
      instance_id: core.deps.instanceId,
      replaced: Boolean(result.replaced),
    },
  });
}

async function closeSession(core: MeshCore, session: Session): Promise<void> {
  clearTimeout(session.registerTimer);
  core.sessions.delete(session);
  const agentId = session.agentId;
  if (!agentId || core.local.get(agentId) !== session) return;
  core.local.delete(agentId);
  const members = core.meshes.get(session.mesh);
  members?.delete(session);
  if (members?.size === 0) {
    core.meshes.delete(session.mesh);
    core.cluster.leaveMesh(session.mesh);
  }
  core.metrics.agents.set(core.local.size);
  let released: boolean;
  try {
    released = await core.registry.release(agentId, session.id);
  } catch (err) {
    if (!(err instanceof RegistryUnavailableError)) throw err;
    // The store is away: tell the agents here now; the other instances hear it when this instance
    // reconciles with the store.
    core.broadcast({ type: 'agent-left', agent_id: agentId }, undefined, session.mesh);
    return;
  }
  if (released) {
    core.metrics.forgotten(await core.registry.forget(agentId));
    core.metrics.agentLeft(agentId);
    core.reports.forget(agentId);
    core.announce({ type: 'agent-left', agent_id: agentId }, session.mesh);
    core.event({
      event: 'agent_left',
      agent_id: agentId,
      metadata: { instance_id: core.deps.instanceId, draining: core.draining },
    });
  }
}
