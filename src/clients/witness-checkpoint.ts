// Every ifmesh client keeps the newest checkpoint it has seen of each witness log, outside the
// witness's database, so that a truncated or rewritten log is caught by comparison with it. Like
// SSH's known_hosts, checkpoints are keyed by the log's origin (which names the witness key), and
// each witness URL remembers the origin it signs as: a second witness is simply another entry, and a
// known URL answering under a new key is refused until `ifmesh witness trust URL` accepts it.
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Dispatcher } from 'undici';
import { type Checkpoint, CheckpointError, openCheckpoint } from '../crypto/checkpoint.js';
import { fromBase64url } from '../crypto/ed25519.js';
import { verifyConsistency } from '../crypto/merkle.js';
import { CheckFailedError } from '../errors.js';
import { writeStateJson } from '../state/json-file.js';
import { openStateDir, type StateDir } from '../state/state-dir.js';
import { httpRequest } from './http.js';

export const CHECKPOINT_FILE = path.basename(openStateDir('.').checkpoints);

export interface HeldCheckpoint {
  origin: string;
  public_key: string;
  size: number;
  root: string;
  time: string;
  note: string;
  seen_at: string;
  /** The URL it was last seen at. */
  url: string;
}

/** The file: checkpoints by origin, and the origin each URL is known to sign as. */
export interface HeldCheckpoints {
  version: 2;
  logs: Record<string, HeldCheckpoint>;
  urls: Record<string, string>;
}

export interface KeyChange {
  url: string;
  held_origin: string;
  held_fingerprint: string;
  presented_origin: string;
  presented_fingerprint: string;
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

/** A known witness URL answers under another key: nothing is sent to it until the key is trusted. */
export class WitnessKeyChangedError extends CheckFailedError {
  constructor(readonly change: KeyChange) {
    super(
      `witness_key_changed: ${change.url} now signs as ${change.presented_origin} (key ${change.presented_fingerprint}), not as ${change.held_origin} (key ${change.held_fingerprint}) as held`,
      `if the witness was re-keyed on purpose, run: ifmesh witness trust ${change.url}`,
      'witness_key_changed',
    );
  }
}

/** SSH-style fingerprint of a base64url Ed25519 public key. */
export function keyFingerprint(publicKey: string): string {
  const raw = fromBase64url(publicKey, 32, 'witness public key');
  return `SHA256:${createHash('sha256').update(raw).digest('base64').replace(/=+$/, '')}`;
}

export function normalizeWitnessUrl(url: string): string {
  return url.replace(/\/+$/, '').replace(/\/api\/(log|events)$/, '');
}

function empty(): HeldCheckpoints {
  return { version: 2, logs: {}, urls: {} };
}

/** Reads the held checkpoints; a file of the old one-checkpoint shape is read as a map of one. */
export async function readHeldCheckpoints(state: StateDir): Promise<HeldCheckpoints> {
  const file = state.checkpoints;
  let parsed: unknown;
  try {
    parsed = JSON.parse(await fs.readFile(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return empty();
    throw new CheckFailedError(`${file} is unreadable: ${(err as Error).message}`);
  }
  const doc = parsed as Partial<HeldCheckpoints> & Partial<HeldCheckpoint>;
  if (doc.version === 2 && doc.logs && doc.urls) return doc as HeldCheckpoints;
  if (typeof doc.origin === 'string' && typeof doc.public_key === 'string') {
    const old = doc as HeldCheckpoint;
    const held = empty();
    held.logs[old.origin] = old;
    if (old.url) held.urls[normalizeWitnessUrl(old.url)] = old.origin;
    return held;
  }
  throw new CheckFailedError(`${file} is not a witness checkpoint file`, 'move it aside and retry');
}

// Writers in other processes share the file: each update re-reads it just before changing one entry
// and renames a complete file into place, so a reader never sees half a file. Two writers racing may
// lose one's entry; it is held again at that writer's next observation.
export async function updateHeld(state: StateDir, change: (held: HeldCheckpoints) => void): Promise<void> {
  await fs.mkdir(state.root, { recursive: true });
  const held = await readHeldCheckpoints(state);
  change(held);
  // Written as every state file is: whole, and (by root, in a state dir handed to the services' user)
  // owned by that user, since the services under systemd update it too.
  writeStateJson(state.checkpoints, held, 0o600);
}

export interface ObserveOptions {
  url: string;
  state: StateDir;
  dispatcher?: Dispatcher | undefined;
  timeoutMs?: number;
  signal?: AbortSignal | undefined;
  now?: () => number;
}

export interface Observation {
  status: 'first' | 'unchanged' | 'advanced';
  checkpoint: Checkpoint;
  previous: HeldCheckpoint | undefined;
}

export interface Served {
  origin: string;
  note: string;
  public_key: string;
}

/** The checkpoint a witness serves now, with the key and origin it claims. */
export async function fetchServed(opts: ObserveOptions): Promise<Served> {
  const base = normalizeWitnessUrl(opts.url);
  const res = await httpRequest(`${base}/api/checkpoint?format=json`, {
    dispatcher: opts.dispatcher,
    timeoutMs: opts.timeoutMs,
    signal: opts.signal,
  });
  const served = res.json as Partial<Served> | undefined;
  if (res.status !== 200 || typeof served?.public_key !== 'string' || typeof served.note !== 'string')
    throw new CheckFailedError(`witness checkpoint at ${base}: HTTP ${res.status}`);
  return served as Served;
}

/** Opens a served note under `key`; a bad signature is an inconsistency. */
export function openServed(served: Served, key: string, origin: string): Checkpoint {
  try {
    return openCheckpoint(served.note, origin, fromBase64url(key, 32, 'witness public key'));
  } catch (err) {
    if (err instanceof CheckpointError)
      throw new WitnessInconsistentError(`witness checkpoint does not verify: ${err.message}`);
    throw err;
  }
}

export function keyChange(url: string, held: HeldCheckpoint | undefined, heldOrigin: string, served: Served) {
  return new WitnessKeyChangedError({
    url,
    held_origin: heldOrigin,
    held_fingerprint: held ? keyFingerprint(held.public_key) : 'unknown',
    presented_origin: served.origin,
    presented_fingerprint: keyFingerprint(served.public_key),
  });
}

/**
 * Fetches the witness's latest checkpoint; refuses it (WitnessKeyChangedError) when the URL is known
 * to sign under another origin or the origin's held key differs; proves it consistent with the one
 * held for its origin, and keeps it. Throws WitnessInconsistentError when the log shrank, changed its
 * root at the same size, or fails the consistency proof.
 */
export async function observeCheckpoint(opts: ObserveOptions): Promise<Observation> {
  const base = normalizeWitnessUrl(opts.url);
  const all = await readHeldCheckpoints(opts.state);
  const served = await fetchServed(opts);
  const known = all.urls[base];
  if (known !== undefined && known !== served.origin) throw keyChange(base, all.logs[known], known, served);
  const held = all.logs[served.origin];
  if (held && held.public_key !== served.public_key) throw keyChange(base, held, held.origin, served);
  const cp = openServed(served, held?.public_key ?? served.public_key, served.origin);
  let status: Observation['status'] = 'first';
  if (held) {
    const heldRoot = Buffer.from(held.root, 'base64');
    if (cp.size < held.size) {
      throw new WitnessInconsistentError(
        `the witness log ${served.origin} has ${cp.size} events, but a checkpoint held since ${held.seen_at} says ${held.size}`,
      );
    }
    if (cp.size === held.size) {
      if (!cp.root.equals(heldRoot))
        throw new WitnessInconsistentError(
          `the witness log's root at size ${cp.size} differs from the held checkpoint`,
        );
      status = 'unchanged';
    } else if (held.size === 0) {
      // Every log extends the empty one; RFC 6962 has no consistency proof from size 0.
      status = 'advanced';
    } else {
      const proof = await httpRequest(`${base}/api/proof/consistency?from=${held.size}&to=${cp.size}`, {
        dispatcher: opts.dispatcher,
        timeoutMs: opts.timeoutMs,
        signal: opts.signal,
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
  if (status !== 'unchanged' || known === undefined || held?.url !== base) {
    await updateHeld(opts.state, (h) => {
      const current = h.logs[served.origin];
      // Another process may have held a newer checkpoint meanwhile: never move backwards.
      if (!current || current.size <= cp.size) {
        h.logs[served.origin] = {
          origin: served.origin,
          public_key: served.public_key,
          size: cp.size,
          root: cp.root.toString('base64'),
          time: cp.time,
          note: served.note,
          seen_at: new Date((opts.now ?? Date.now)()).toISOString(),
          url: base,
        };
      }
      h.urls[base] = served.origin;
    });
  }
  return { status, checkpoint: cp, previous: held };
}
