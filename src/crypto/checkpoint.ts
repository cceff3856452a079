// Signed tree heads in the C2SP tlog-checkpoint format: a signed note whose body is
// "<origin>\n<size>\n<base64 root>\n[extension lines]\n" and whose signature lines are
// "— <key name> <base64(key hash[4] || Ed25519 signature)>". We add one extension line,
// "time <ISO-8601>", so that every checkpoint says when it was signed.
import { createHash } from 'node:crypto';
import { type Signer, verifySignature } from './ed25519.js';

export interface Checkpoint {
  origin: string;
  size: number;
  root: Buffer;
  time: string;
}

export class CheckpointError extends Error {}

const encoder = new TextEncoder();

/** The signed-note key hash for an Ed25519 key: SHA-256(name || "\n" || 0x01 || key)[:4]. */
export function noteKeyHash(name: string, publicKey: Uint8Array): Buffer {
  return createHash('sha256')
    .update(name)
    .update(Buffer.from([0x0a, 0x01]))
    .update(publicKey)
    .digest()
    .subarray(0, 4);
}

export function checkpointBody(cp: Checkpoint): string {
  if (/\n/.test(cp.origin) || cp.origin === '')
    throw new CheckpointError('origin must be one non-empty line');
  return `${cp.origin}\n${cp.size}\n${cp.root.toString('base64')}\ntime ${cp.time}\n`;
}

/** The note text: body, a blank line, and one signature line by `name`. */
export function signCheckpoint(cp: Checkpoint, signer: Signer, name: string): string {
  const body = checkpointBody(cp);
  const sig = signer.sign(encoder.encode(body));
  const blob = Buffer.concat([noteKeyHash(name, signer.publicKey), Buffer.from(sig)]).toString('base64');
  return `${body}\n\u2014 ${name} ${blob}\n`;
}

/** Parses a note and checks its signature by (name, publicKey). Throws CheckpointError otherwise. */
export function openCheckpoint(note: string, name: string, publicKey: Uint8Array): Checkpoint {
  const split = note.indexOf('\n\n');
  if (split < 0) throw new CheckpointError('not a signed note: no blank line before the signatures');
  const body = note.slice(0, split + 1);
  const lines = body.split('\n').slice(0, -1);
  if (lines.length < 3) throw new CheckpointError('checkpoint body needs origin, size and root hash');
  const [origin, sizeText, rootText, ...ext] = lines as [string, string, string, ...string[]];
  if (!/^\d{1,15}$/.test(sizeText)) throw new CheckpointError(`tree size "${sizeText}" is not a number`);
  const root = Buffer.from(rootText, 'base64');
  if (root.length !== 32 || root.toString('base64') !== rootText)
    throw new CheckpointError('root hash is not 32 bytes of base64');
  const time = ext.find((l) => l.startsWith('time '))?.slice(5) ?? '';
  const want = noteKeyHash(name, publicKey);
  const sigLines = note
    .slice(split + 2)
    .split('\n')
    .filter(Boolean);
  for (const line of sigLines) {
    const m = /^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const blob = Buffer.from(m[2]!, 'base64');
    if (blob.length !== 68 || !blob.subarray(0, 4).equals(want)) continue;
    if (verifySignature(publicKey, encoder.encode(body), new Uint8Array(blob.subarray(4)))) {
      return { origin, size: Number(sizeText), root, time };
    }
    throw new CheckpointError(`signature by ${name} does not verify`);
  }
  throw new CheckpointError(`no signature by ${name} with the expected key`);
}
