import { fromBase64url } from '../../crypto/ed25519.js';
import { UsageError } from '../../errors.js';

/**
 * Reads an allow-list of agent public keys: one base64url Ed25519 key per line, optionally followed
 * by a note (the agent id); blank lines and # comments are ignored.
 */
export function loadAllowedKeys(text: string, file: string): Set<string> {
  const keys = new Set<string>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (!line) return;
    const key = line.split(/\s+/)[0]!;
    try {
      fromBase64url(key, 32, 'key');
    } catch (err) {
      throw new UsageError(
        `${file}:${i + 1}: ${(err as Error).message}`,
        'one base64url Ed25519 public key per line (from `ifmesh keys show`)',
      );
    }
    keys.add(key);
  });
  if (keys.size === 0)
    throw new UsageError(
      `${file} lists no keys`,
      'an empty allow-list would refuse every agent; remove --allow-keys instead',
    );
  return keys;
}
