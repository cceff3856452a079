import { createSigner } from '../crypto/ed25519.js';
import { buildMessage, MessageVerifier, type RejectReason, signMessage } from '../crypto/ifmessage.js';
import { readIdentity, readPublicKey } from '../crypto/key-file.js';
import { UsageError } from '../errors.js';
import { AGENT_ID_RULE, isAgentId } from '../protocol/ids.js';
import type { IFMessage } from '../protocol/ifmessage.js';

export interface SignOptions {
  keyFile: string;
  to: string;
  type: string;
  payload: string | undefined;
  nowMs: number;
}

export async function signOne(opts: SignOptions): Promise<IFMessage> {
  if (!isAgentId(opts.to))
    throw new UsageError(`--to ${JSON.stringify(opts.to)} is not an agent id`, `use ${AGENT_ID_RULE}`);
  if (!/^[a-z][a-z0-9_.-]{0,63}$/.test(opts.type)) {
    throw new UsageError(
      `--type ${JSON.stringify(opts.type)} is not a message type`,
      'use lower-case letters, digits, . _ -; e.g. ping',
    );
  }
  let payload: Record<string, unknown> = {};
  if (opts.payload !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(opts.payload);
    } catch (err) {
      throw new UsageError(
        `--payload is not valid JSON: ${(err as Error).message}`,
        `quote it for the shell, e.g. --payload '{"n":1}'`,
      );
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new UsageError('--payload must be a JSON object', `e.g. --payload '{"n":1}'`);
    }
    payload = parsed as Record<string, unknown>;
  }
  const identity = await readIdentity(opts.keyFile);
  const message = buildMessage({ from: identity.agentId, to: opts.to, type: opts.type, payload }, opts.nowMs);
  return signMessage(message, createSigner(identity.seed));
}

export interface VerifyReport {
  valid: boolean;
  reason: RejectReason | null;
  detail: string | null;
  id: string | null;
  from: string | null;
  to: string | null;
  type: string | null;
  key_id: string;
}

export async function verifyOne(opts: {
  pubkey: string;
  cwd: string;
  text: string;
  expectFrom?: string | undefined;
  skewMs: number;
  nowMs: number;
}): Promise<VerifyReport> {
  const pub = await readPublicKey(opts.pubkey, opts.cwd);
  const verifier = new MessageVerifier({ skewMs: opts.skewMs, now: () => opts.nowMs });
  const result = verifier.verifyText(opts.text.trim(), { publicKey: pub.publicKey, from: opts.expectFrom });
  const m = result.ok ? result.message : result.message;
  return {
    valid: result.ok,
    reason: result.ok ? null : result.reason,
    detail: result.ok ? null : result.detail,
    id: m?.id ?? null,
    from: m?.from ?? null,
    to: m?.to ?? null,
    type: m?.type ?? null,
    key_id: pub.keyId,
  };
}
