import { randomBytes } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../errors.js';
import { AGENT_ID_RULE, isAgentId } from '../protocol/ids.js';
import type { RotationProof } from '../protocol/signaling.js';
import {
  fromBase64url,
  generateKeyPair,
  type KeyFormatError,
  keyId,
  publicKeyFromSeed,
  toBase64url,
} from './ed25519.js';

export const IDENTITY_TYPE = 'ifmesh-ed25519-identity';

export interface Identity {
  agentId: string;
  keyId: string;
  publicKey: Uint8Array;
  seed: Uint8Array;
  createdAt: string;
  /** The rotation that made this key, signed by the previous one (written by writeRotatedIdentity). */
  rotation?: RotationProof;
}

export interface PublicIdentity {
  agentId: string | undefined;
  keyId: string;
  publicKey: Uint8Array;
}

export function newIdentity(agentId: string, now: Date = new Date()): Identity {
  if (!isAgentId(agentId)) {
    throw new UsageError(`agent id ${JSON.stringify(agentId)} is not valid`, `use ${AGENT_ID_RULE}`);
  }
  const { seed, publicKey } = generateKeyPair();
  return { agentId, keyId: keyId(publicKey), publicKey, seed, createdAt: now.toISOString() };
}

function publicDocument(id: PublicIdentity) {
  return {
    type: IDENTITY_TYPE,
    version: 1,
    agent_id: id.agentId,
    key_id: id.keyId,
    public_key: toBase64url(id.publicKey),
  };
}

/** Writes the file so that a reader sees either nothing or the whole thing, with `mode` from the start. */
export async function writeAtomic(
  file: string,
  content: string,
  mode: number,
  overwrite: boolean,
): Promise<void> {
  // Unique per call: two writers in one process within one millisecond must not share a temp file.
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  const handle = await fs.open(tmp, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, mode);
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    if (!overwrite) {
      // link() fails if the target exists, so a concurrent writer cannot be clobbered either.
      await fs.link(tmp, file);
      await fs.unlink(tmp);
    } else {
      await fs.rename(tmp, file);
    }
  } catch (err) {
    await fs.unlink(tmp).catch(() => {});
    throw err;
  }
}

export interface WrittenIdentity {
  keyPath: string;
  pubPath: string;
  identity: Identity;
}

export async function writeIdentity(
  dir: string,
  identity: Identity,
  force: boolean,
): Promise<WrittenIdentity> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const keyPath = path.join(dir, `${identity.agentId}.key`);
  const pubPath = path.join(dir, `${identity.agentId}.pub`);
  if (!force) {
    for (const p of [keyPath, pubPath]) {
      const exists = await fs.stat(p).then(
        () => true,
        () => false,
      );
      if (exists) {
        throw new UsageError(
          `${p} already exists; refusing to overwrite an identity`,
          'pass --force to replace it',
          'key_exists',
        );
      }
    }
  }
  const doc = {
    ...publicDocument(identity),
    private_key: toBase64url(identity.seed),
    created_at: identity.createdAt,
  };
  try {
    await writeAtomic(keyPath, `${JSON.stringify(doc, null, 2)}\n`, 0o600, force);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new UsageError(
        `${keyPath} already exists; refusing to overwrite an identity`,
        'pass --force to replace it',
        'key_exists',
      );
    }
    throw err;
  }
  await writeAtomic(pubPath, `${JSON.stringify(publicDocument(identity), null, 2)}\n`, 0o644, true);
  return { keyPath, pubPath, identity };
}

async function readJsonFile(file: string, what: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(
      `cannot read ${what} ${file}: ${code ?? (err as Error).message}`,
      'check the path',
      'key_unreadable',
    );
  }
  try {
    const doc = JSON.parse(text) as unknown;
    if (doc && typeof doc === 'object' && !Array.isArray(doc)) return doc as Record<string, unknown>;
  } catch {
    // fall through: the message below must not echo the file, which may hold a private key
  }
  throw new UsageError(
    `${file} is not an ifmesh key file (expected a JSON object)`,
    "create one with 'ifmesh keys generate'",
    'key_invalid',
  );
}

/** Reads a private identity (.key). Error messages never include key material. */
export async function readIdentity(file: string): Promise<Identity> {
  const doc = await readJsonFile(file, 'key file');
  const fail = (what: string): never => {
    throw new UsageError(`${file}: ${what}`, "create a new one with 'ifmesh keys generate'", 'key_invalid');
  };
  if (doc.type !== IDENTITY_TYPE) fail(`not an ifmesh identity (type must be "${IDENTITY_TYPE}")`);
  if (typeof doc.private_key !== 'string') fail('has no private_key; is this a .pub file?');
  if (!isAgentId(doc.agent_id)) fail(`agent_id is missing or invalid (${AGENT_ID_RULE})`);
  let seed: Uint8Array;
  try {
    seed = fromBase64url(doc.private_key as string, 32, 'private_key');
  } catch (err) {
    return fail((err as KeyFormatError).message);
  }
  const publicKey = publicKeyFromSeed(seed);
  if (typeof doc.public_key === 'string' && doc.public_key !== toBase64url(publicKey)) {
    fail('public_key does not match private_key (the file was edited or corrupted)');
  }
  const rotation = rotationOf(doc.rotation, toBase64url(publicKey));
  return {
    agentId: doc.agent_id as string,
    keyId: keyId(publicKey),
    publicKey,
    seed,
    createdAt: typeof doc.created_at === 'string' ? doc.created_at : '',
    ...(rotation ? { rotation } : {}),
  };
}

/** A stored rotation proof, if it is well-formed and names this key (anything else is ignored). */
function rotationOf(value: unknown, publicKey: string): RotationProof | undefined {
  if (!value || typeof value !== 'object') return undefined;
  const r = value as Record<string, unknown>;
  if (typeof r.previous_key !== 'string' || typeof r.signature !== 'string' || r.public_key !== publicKey)
    return undefined;
  return { previous_key: r.previous_key, public_key: publicKey, signature: r.signature };
}

export interface RotatedIdentity {
  keyPath: string;
  /** The previous identity file, kept whole (`<file>.rotated-<UTC time>`, same mode). */
  backupPath: string;
  pubPath: string | undefined;
}

/**
 * Replaces the identity in `file` by a rotated key: the old file is kept as
 * `<file>.rotated-<time>` (a hard link, so it keeps its content and 0600), then the new identity,
 * with the rotation proof the old key signed, replaces `file` atomically (0600). A `.pub` beside a
 * `.key` is rewritten too. A restarted agent reads the new key and presents the proof, so signaling
 * accepts it even if the rotation's re-registration never reached it.
 */
export async function writeRotatedIdentity(
  file: string,
  next: { seed: Uint8Array; publicKey: Uint8Array },
  rotation: RotationProof,
  now: Date = new Date(),
): Promise<RotatedIdentity> {
  const current = await readIdentity(file);
  if (
    rotation.previous_key !== toBase64url(current.publicKey) ||
    rotation.public_key !== toBase64url(next.publicKey)
  )
    throw new UsageError(`${file}: the rotation does not hand this file's key over to the new one`);
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  let backupPath = `${file}.rotated-${stamp}`;
  for (let n = 2; ; n++) {
    try {
      await fs.link(file, backupPath);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || n > 100) throw err;
      backupPath = `${file}.rotated-${stamp}-${n}`;
    }
  }
  const identity: Identity = {
    agentId: current.agentId,
    keyId: keyId(next.publicKey),
    publicKey: next.publicKey,
    seed: next.seed,
    createdAt: now.toISOString(),
  };
  const doc = {
    ...publicDocument(identity),
    private_key: toBase64url(identity.seed),
    created_at: identity.createdAt,
    rotation,
  };
  await writeAtomic(file, `${JSON.stringify(doc, null, 2)}\n`, 0o600, true);
  let pubPath: string | undefined;
  if (file.endsWith('.key')) {
    const pub = `${file.slice(0, -'.key'.length)}.pub`;
    if (
      await fs.stat(pub).then(
        () => true,
        () => false,
      )
    ) {
      await writeAtomic(pub, `${JSON.stringify(publicDocument(identity), null, 2)}\n`, 0o644, true);
      pubPath = pub;
    }
  }
  return { keyPath: file, backupPath, pubPath };
}

/** A public key given as 43 base64url characters, or as the path of a .pub or .key file. */
export async function readPublicKey(arg: string, cwd: string): Promise<PublicIdentity> {
  const file = path.resolve(cwd, arg);
  if (/^[A-Za-z0-9_-]{43}$/.test(arg)) {
    const exists = await fs.stat(file).then(
      () => true,
      () => false,
    );
    if (!exists) {
      const publicKey = fromBase64url(arg, 32, 'public key');
      return { agentId: undefined, keyId: keyId(publicKey), publicKey };
    }
  }
  const doc = await readJsonFile(file, 'public key file');
  if (doc.type !== IDENTITY_TYPE || typeof doc.public_key !== 'string') {
    throw new UsageError(
      `${arg}: not an ifmesh public key (expected type "${IDENTITY_TYPE}" with public_key)`,
      'pass a .pub file or the 43-character base64url key',
      'key_invalid',
    );
  }
  let publicKey: Uint8Array;
  try {
    publicKey = fromBase64url(doc.public_key, 32, 'public_key');
  } catch (err) {
    throw new UsageError(
      `${arg}: ${(err as Error).message}`,
      'pass a .pub file or the 43-character base64url key',
      'key_invalid',
    );
  }
  return { agentId: isAgentId(doc.agent_id) ? doc.agent_id : undefined, keyId: keyId(publicKey), publicKey };
}

/** Private key files readable by group or others are refused by ssh; we warn. */
export async function insecureModeWarning(file: string): Promise<string | undefined> {
  const st = await fs.stat(file).catch(() => undefined);
  if (st && (st.mode & 0o077) !== 0) {
    return `${file} is readable by group or others (mode ${(st.mode & 0o777).toString(8)}); run: chmod 600 ${file}`;
  }
  return undefined;
}

/** Loads the identity at `file`, or creates it (mode 0600) when absent: for services' own keys. */
export async function loadOrCreateIdentity(file: string, agentId: string): Promise<Identity> {
  const exists = await fs.stat(file).then(
    () => true,
    () => false,
  );
  if (exists) return readIdentity(file);
  const identity = newIdentity(agentId);
  const dir = path.dirname(file);
  const base = path.basename(file).replace(/\.key$/, '');
  const tmpId = { ...identity, agentId: base };
  let written: WrittenIdentity;
  try {
    written = await writeIdentity(dir, tmpId, false);
  } catch (err) {
    // Several processes sharing a key (witness instances on one database) may start at once: the
    // first to create the file wins, and the others use its key.
    if ((err as { code?: string }).code === 'key_exists') return readIdentity(file);
    throw err;
  }
  if (written.keyPath !== file) await fs.rename(written.keyPath, file);
  return { ...identity, agentId: base };
}
