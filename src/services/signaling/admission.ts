// The identity checks of a registration, between its proof of key (sessions.ts) and the registry's
// claim, which binds the id (identities.ts): a rotation proof must be signed by the key it names as
// previous, and with `--allow-keys` the (id, key) pair must be listed, or the id's binding must have
// moved to the key since. And how a claim the registry refused is answered.
import { fromBase64url, KeyFormatError, verifySignature } from '../../crypto/ed25519.js';
import { CLOSE, type ClientFrame, type RotationProof, rotationStatement } from '../../protocol/signaling.js';
import { RegistryUnavailableError } from './redis-registry.js';
import type { ClaimResult } from './registry.js';
import type { MeshCore } from './types.js';

// RFC 6455 "Try Again Later": the cluster store is unreachable, so this instance cannot tell who
// else is in the mesh; the agent retries (here or on another instance) instead of joining a split.
export const TRY_AGAIN_LATER = 1013;

/** Why a registration is refused: the error frame's code and message, and the close code. */
export interface Refusal {
  code: string;
  message: string;
  close: number;
}

export interface Admission {
  via: 'first_use' | 'allow_list';
  rotation: RotationProof | undefined;
}

type Register = Extract<ClientFrame, { type: 'register' }>;

/** Checks the rotation proof a register frame carries, then the allow-list. */
export async function admit(core: MeshCore, f: Register): Promise<Admission | Refusal> {
  let rotation: RotationProof | undefined;
  if (f.rotation) {
    let previous: Uint8Array;
    let proof: Uint8Array;
    try {
      previous = fromBase64url(f.rotation.previous_key, 32, 'rotation.previous_key');
      proof = fromBase64url(f.rotation.signature, 64, 'rotation.signature');
    } catch (err) {
      if (!(err instanceof KeyFormatError)) throw err;
      return { code: 'invalid_frame', message: err.message, close: CLOSE.malformed };
    }
    if (!verifySignature(previous, rotationStatement(f.agent_id, f.public_key), proof))
      return {
        code: 'bad_rotation_proof',
        message: `rotation.signature does not prove the previous key for ifmesh-rotate:${f.agent_id}:<public_key>`,
        close: CLOSE.unauthorized,
      };
    rotation = f.rotation;
  }
  const allow = core.deps.allowList;
  if (!allow) return { via: 'first_use', rotation };
  if (allow.allows(f.agent_id, f.public_key)) return { via: 'allow_list', rotation };
  let beyond: boolean;
  try {
    beyond = await admittedBeyondList(core, f.agent_id, f.public_key, rotation);
  } catch (err) {
    if (!(err instanceof RegistryUnavailableError)) throw err;
    return {
      code: 'cluster_unavailable',
      message: 'the cluster registry is unreachable; retry shortly',
      close: TRY_AGAIN_LATER,
    };
  }
  if (beyond) return { via: 'first_use', rotation };
  return {
    code: 'key_not_allowed',
    message: allow.lists(f.agent_id)
      ? `${f.agent_id} is on the allow-list with another key`
      : `${f.agent_id} is not on the allow-list`,
    close: CLOSE.unauthorized,
  };
}

/**
 * With an allow-list, a key not listed for the id is still admitted when the id's binding moved to
 * it after an admission (a proven rotation, an operator's rebind), or when it brings a rotation from
 * the bound key. Never for an id that is not bound yet: the list decides first bindings.
 */
async function admittedBeyondList(
  core: MeshCore,
  agentId: string,
  publicKey: string,
  rotation: RotationProof | undefined,
): Promise<boolean> {
  const bound = await core.registry.binding(agentId);
  if (!bound) return false;
  if (bound.public_key === publicKey) return bound.via === 'rotation' || bound.via === 'rebind';
  return rotation?.previous_key === bound.public_key;
}

/**
 * A key that is not this id's (4409 id_key_mismatch, audited and counted as an unauthorized
 * attempt here; the 4401 of a revoked key is audited by the caller's refusal like every 4401).
 */
export function refusal(
  core: MeshCore,
  remote: string,
  agentId: string,
  presentedKeyId: string,
  result: Extract<ClaimResult, { status: 'taken' }>,
): Refusal {
  if (result.reason === 'key_revoked')
    return {
      code: 'key_revoked',
      message: `key ${result.revocation.key_id} was revoked (${result.revocation.reason} on ${result.revocation.revoked_at}); register with the agent's current key`,
      close: CLOSE.unauthorized,
    };
  core.metrics.unauthorized.inc();
  core.event({
    event: 'agent_id_key_mismatch',
    agent_id: agentId,
    severity: 'warning',
    metadata: {
      bound_key_id: result.binding.key_id,
      presented_key_id: presentedKeyId,
      bound_at: result.binding.bound_at,
      remote,
      instance_id: core.deps.instanceId,
    },
  });
  return {
    code: 'id_key_mismatch',
    message: `${agentId} is bound to key ${result.binding.key_id}, not ${presentedKeyId}; if the agent's key really changed, an operator rebinds it: ifmesh agents rebind ${agentId} --key <public key>`,
    close: CLOSE.idKeyMismatch,
  };
}
