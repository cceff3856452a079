// Every ifmesh client keeps the newest witness checkpoint it has seen, outside the witness's
// database, so that a truncated or rewritten log is caught by comparison with it.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Dispatcher } from 'undici';
import { type Checkpoint, CheckpointError, openCheckpoint } from '../crypto/checkpoint.js';
import { fromBase64url } from '../crypto/ed25519.js';
import { verifyConsistency } from '../crypto/merkle.js';
import { CheckFailedError } from '../errors.js';
import { httpRequest } from './http.js';

export const CHECKPOINT_FILE = 'witness-checkpoint.json';

export interface HeldCheckpoint {
  origin: string;
  public_key: string;
  size: number;
  root: string;
  time: string;
  note: string;
  seen_at: string;
  url: string;
}

export class WitnessInconsistentError extends CheckFailedError {
  constructor(message: string) {
    super(
      message,
      'the witness log was truncated or rewritten; keep the state dir and investigate',
      'witness_inconsistent',
    );
  }
}

export async function readHeldCheckpoint(stateDir: string): Promise<HeldCheckpoint | undefined> {
  try {
    return JSON.parse(await fs.readFile(path.join(stateDir, CHECKPOINT_FILE), 'utf8')) as HeldCheckpoint;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CheckFailedError(
      `${path.join(stateDir, CHECKPOINT_FILE)} is unreadable: ${(err as Error).message}`,
    );
  }
}

export async function writeHeldCheckpoint(stateDir: string, cp: HeldCheckpoint): Promise<void> {
  await fs.mkdir(stateDir, { recursive: true });
  const file = path.join(stateDir, CHECKPOINT_FILE);
  const tmp = `${file}.tmp-${process.pid}`;
  await fs.writeFile(tmp, `${JSON.stringify(cp, null, 2)}\n`);
  await fs.rename(tmp, file);
}

export interface ObserveOptions {
  url: string;
  stateDir: string;
  dispatcher?: Dispatcher | undefined;
  timeoutMs?: number;
  now?: () => number;
}

export interface Observation {
  status: 'first' | 'unchanged' | 'advanced';
  checkpoint: Checkpoint;
  previous: HeldCheckpoint | undefined;
}

/**
 * Fetches the witness's latest checkpoint, checks its signature against the key pinned at first
 * contact, proves it consistent with the one held, and keeps it. Throws WitnessInconsistentError
 * when the log shrank, changed its root at the same size, or fails the consistency proof.
 */
export async function observeCheckpoint(opts: ObserveOptions): Promise<Observation> {
  const base = opts.url.replace(/\/+$/, '');
  const held = await readHeldCheckpoint(opts.stateDir);
  const res = await httpRequest(`${base}/api/checkpoint?format=json`, {
    dispatcher: opts.dispatcher,
    timeoutMs: opts.timeoutMs,
  });
  if (res.status !== 200) throw new CheckFailedError(`witness checkpoint: HTTP ${res.status}`);
  const served = res.json as { origin: string; note: string; public_key: string };
  const pinnedKey = held?.public_key ?? served.public_key;
  const origin = held?.origin ?? served.origin;
  if (held && (served.public_key !== held.public_key || served.origin !== held.origin)) {
    throw new WitnessInconsistentError(
      `the witness now signs as ${served.origin} with another key than the one held (${held.origin})`,
    );
  }
  let cp: Checkpoint;
  try {
    cp = openCheckpoint(served.note, origin, fromBase64url(pinnedKey, 32, 'witness public key'));
  } catch (err) {
    if (err instanceof CheckpointError)
      throw new WitnessInconsistentError(`witness checkpoint does not verify: ${err.message}`);
    throw err;
  }
  let status: Observation['status'] = 'first';
  if (held) {
    const heldRoot = Buffer.from(held.root, 'base64');
    if (cp.size < held.size) {
      throw new WitnessInconsistentError(
        `the witness log has ${cp.size} events, but a checkpoint held since ${held.seen_at} says ${held.size}`,
      );
    }
    if (cp.size === held.size) {
      if (!cp.root.equals(heldRoot))
        throw new WitnessInconsistentError(
          `the witness log's root at size ${cp.size} differs from the held checkpoint`,
        );
      status = 'unchanged';
    } else {
      const proof = await httpRequest(`${base}/api/proof/consistency?from=${held.size}&to=${cp.size}`, {
        dispatcher: opts.dispatcher,
        timeoutMs: opts.timeoutMs,
      });
      const hashes = ((proof.json as { hashes?: string[] })?.hashes ?? []).map((h) =>
        Buffer.from(h, 'base64'),
      );
      if (proof.status !== 200 || !verifyConsistency(held.size, cp.size, heldRoot, cp.root, hashes)) {
        throw new WitnessInconsistentError(
          `the witness log at size ${cp.size} is not an extension of the held checkpoint at size ${held.size}`,
        );
      }
      status = 'advanced';
    }
  }
  if (status !== 'unchanged') {
    await writeHeldCheckpoint(opts.stateDir, {
      origin,
      public_key: pinnedKey,
      size: cp.size,
      root: cp.root.toString('base64'),
      time: cp.time,
      note: served.note,
      seen_at: new Date((opts.now ?? Date.now)()).toISOString(),
      url: base,
    });
  }
  return { status, checkpoint: cp, previous: held };
}
