// Admin pushes applied to the agents this instance holds, and the standalone "cluster" (this
// instance alone), which keeps the behaviour of a single signaling server.
import { z } from 'zod';
import { CLOSE } from '../../protocol/signaling.js';
import type { BlockEntry } from './block-list.js';
import type { AdminPush, MeshCluster, MeshCore, RotationView } from './types.js';

const text = z.string().max(1_024);
const id = z.string().min(1).max(256);
const urls = z.array(text).max(64);
/** MeshSettings' own keys typed, anything else (bandwidth, …) plain JSON. */
const settingsSchema = z
  .object({
    turnFallbackTimeout: z.number().optional(),
    iceTransportPolicy: z.enum(['all', 'relay']).optional(),
    stunServers: urls.optional(),
    turnServers: urls.optional(),
    heartbeatTimeoutMs: z.number().optional(),
    statsIntervalMs: z.number().optional(),
  })
  .catchall(z.json());

const rotationMetaSchema = z.strictObject({
  rotation_id: id,
  started_at: text,
  reason: text,
  incident_id: text.nullable(),
  force_immediate: z.boolean(),
});

/**
 * What an admin push may be, as it arrives from another instance over the cluster channel: every
 * field applyPush reads is checked here first, so a malformed push is dropped, never a TypeError.
 */
export const adminPushSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('config'),
    settings: settingsSchema,
    // A "__proto__" key anywhere is refused before this (cluster-messages.ts).
    frame: z.object({ type: z.literal('config') }).catchall(z.json()),
  }),
  z.strictObject({ kind: z.literal('rotate'), rotation: rotationMetaSchema }),
  z.strictObject({
    kind: z.literal('reconnect'),
    peers: z
      .record(id, z.array(id).max(1_000))
      .refine((p) => Object.keys(p).length <= 10_000, 'too many agents'),
    reason: text.optional(),
  }),
  z.strictObject({
    kind: z.literal('block'),
    entry: z.strictObject({
      agent_id: id,
      public_key: text.nullable(),
      key_id: text.nullable(),
      reason: text,
      blocked_at: text,
    }),
  }),
  z.strictObject({ kind: z.literal('unblock'), agent_id: id }),
]);

/** Stored rotation state (Redis `rotation`), checked like a push before it is believed. */
export const rotationMetaStored = rotationMetaSchema;

// A push kind added to AdminPush without a schema here fails to compile: instances would otherwise
// drop every push of the new kind as malformed.
type Unchecked = Exclude<AdminPush['kind'], z.infer<typeof adminPushSchema>['kind']>;
const everyKindChecked: [Unchecked] extends [never] ? true : Unchecked = true;
void everyKindChecked;

/** Applies a push to local agents; returns how many it reached. */
export function applyPush(core: MeshCore, p: AdminPush): number {
  switch (p.kind) {
    case 'config':
      Object.assign(core.settings, p.settings);
      return core.broadcast(p.frame);
    case 'rotate':
      core.rotation = { ...p.rotation, targets: new Set(core.local.keys()), completed: new Set() };
      return core.broadcast({
        type: 'rotate-keys',
        rotation_id: p.rotation.rotation_id,
        force_immediate: p.rotation.force_immediate,
        reason: p.rotation.reason,
      });
    case 'reconnect': {
      let n = 0;
      for (const [agentId, peers] of Object.entries(p.peers)) {
        const s = core.local.get(agentId);
        if (!s) continue;
        core.send(s, { type: 'reconnect', reason: p.reason ?? 'turn_servers_changed', peers });
        n += 1;
      }
      return n;
    }
    case 'block': {
      core.blocks.add(p.entry);
      return disconnectBlocked(core, p.entry);
    }
    case 'unblock':
      core.blocks.remove(p.agent_id);
      return 0;
  }
}

/**
 * Closes (4401 blocked) the local sessions of a blocked identity: its id, or its key under another
 * id. Then tells every agent here, in every mesh, that those ids left because they are blocked
 * (`agent-left` with `reason: "blocked"`, an extension of the contract's frame): their DataChannels
 * to it do not need signaling, so without this a blocked agent kept talking to its peers. Every
 * instance does so (the block is pushed to each), whether or not the identity was connected here.
 */
export function disconnectBlocked(core: MeshCore, entry: BlockEntry): number {
  let n = 0;
  const ids = new Set([entry.agent_id]);
  for (const s of core.local.values()) {
    if (s.agentId !== entry.agent_id && !(entry.public_key && s.publicKey === entry.public_key)) continue;
    core.send(s, {
      type: 'error',
      code: 'blocked',
      message: `${entry.agent_id} is blocked (${entry.reason})`,
    });
    s.ws.close(CLOSE.unauthorized, 'blocked');
    if (s.agentId) ids.add(s.agentId);
    n += 1;
  }
  for (const id of ids) core.broadcast({ type: 'agent-left', agent_id: id, reason: 'blocked' });
  return n;
}

export function localRotationView(core: MeshCore): RotationView | undefined {
  const r = core.rotation;
  if (!r) return undefined;
  const { targets, completed, ...meta } = r;
  return { ...meta, targets: [...targets], completed: [...completed].filter((a) => targets.has(a)) };
}

export function standaloneCluster(): MeshCluster {
  let core: MeshCore | undefined;
  return {
    mode: 'standalone',
    clusterId: null,
    healthy: () => true,
    start: async (c) => {
      core = c;
    },
    announce: () => {},
    joinMesh: async () => {},
    leaveMesh: () => {},
    replaced: () => {},
    push: async (p) => applyPush(core!, p),
    rotationStart: async () => core!.local.size,
    rotationComplete: async () => {},
    rotationStatus: async () => localRotationView(core!),
    close: async () => {},
  };
}
