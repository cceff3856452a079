import { fromBase64url } from '../../crypto/ed25519.js';
import { UsageError } from '../../errors.js';
import { AGENT_ID_RULE, isAgentId } from '../../protocol/ids.js';

/**
 * The agents allowed to register (`--allow-keys`): pairs of public key and agent id. Both are
 * checked, so one allowed agent's key cannot register under another allowed agent's id. An id may be
 * listed with several keys (say, before a planned key change). Once an id is registered, its key
 * binding (identities.ts) governs: a key it rotated to, or an operator rebound it to, is accepted
 * though not listed.
 */
export class AllowList {
  constructor(private readonly pairs: ReadonlyMap<string, ReadonlySet<string>>) {}

  /** The id is listed with this key. */
  allows(agentId: string, publicKey: string): boolean {
    return this.pairs.get(agentId)?.has(publicKey) ?? false;
  }

  /** The id is listed at all. */
  lists(agentId: string): boolean {
    return this.pairs.has(agentId);
  }

  get size(): number {
    return this.pairs.size;
  }
}

const FORMAT =
  'one base64url Ed25519 public key and its agent id per line (`KEY AGENT_ID`, from `ifmesh keys show`)';

/**
 * Reads an allow-list: `KEY AGENT_ID` per line; blank lines and # comments are ignored. A line with
 * a key alone is refused: such a list would let that key take any id (the hole `--allow-keys` had).
 */
export function loadAllowList(text: string, file: string): AllowList {
  const pairs = new Map<string, Set<string>>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (!line) return;
    const where = `${file}:${i + 1}`;
    const [key, id, ...rest] = line.split(/\s+/);
    try {
      fromBase64url(key!, 32, 'key');
    } catch (err) {
      throw new UsageError(`${where}: ${(err as Error).message}`, FORMAT);
    }
    if (id === undefined)
      throw new UsageError(
        `${where}: the key has no agent id; each key must name the id it may register as`,
        `${FORMAT}; e.g. \`${key} agent-1\``,
      );
    if (!isAgentId(id))
      throw new UsageError(
        `${where}: "${String(id).slice(0, 64)}" is not an agent id (${AGENT_ID_RULE})`,
        FORMAT,
      );
    if (rest.length)
      throw new UsageError(`${where}: unexpected text after the agent id`, `${FORMAT}; notes go after a #`);
    const keys = pairs.get(id) ?? new Set<string>();
    keys.add(key!);
    pairs.set(id, keys);
  });
  if (pairs.size === 0)
    throw new UsageError(
      `${file} lists no agents`,
      'an empty allow-list would refuse every agent; remove --allow-keys instead',
    );
  return new AllowList(pairs);
}
