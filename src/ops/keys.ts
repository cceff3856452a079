import { promises as fs } from 'node:fs';
import path from 'node:path';
import { toBase64url } from '../crypto/ed25519.js';
import {
  insecureModeWarning,
  newIdentity,
  readIdentity,
  readPublicKey,
  writeIdentity,
} from '../crypto/key-file.js';

export interface KeyReport {
  agent_id: string | null;
  key_id: string;
  public_key: string;
  /** Files written (generate) or read (show). */
  files: string[];
  warnings: string[];
}

export async function generateKeys(opts: {
  agentId: string;
  outDir: string;
  force: boolean;
  now: Date;
}): Promise<KeyReport> {
  const written = await writeIdentity(opts.outDir, newIdentity(opts.agentId, opts.now), opts.force);
  return {
    agent_id: written.identity.agentId,
    key_id: written.identity.keyId,
    public_key: toBase64url(written.identity.publicKey),
    files: [written.keyPath, written.pubPath],
    warnings: [],
  };
}

/** Shows the public half of a .key or .pub file; a .key is fully checked (seed matches public key). */
export async function showKey(file: string): Promise<KeyReport> {
  const text = await fs.readFile(file, 'utf8').catch(() => '');
  const isPrivate = text.includes('"private_key"');
  if (isPrivate) {
    const id = await readIdentity(file);
    const warning = await insecureModeWarning(file);
    return {
      agent_id: id.agentId,
      key_id: id.keyId,
      public_key: toBase64url(id.publicKey),
      files: [path.resolve(file)],
      warnings: warning ? [warning] : [],
    };
  }
  const pub = await readPublicKey(file, path.dirname(file));
  return {
    agent_id: pub.agentId ?? null,
    key_id: pub.keyId,
    public_key: toBase64url(pub.publicKey),
    files: [path.resolve(file)],
    warnings: [],
  };
}
