import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ConfigError, type ConfigIssue } from '../errors.js';
import { AGENT_ID_RULE, isAgentId } from '../protocol/ids.js';
import { parseIceUrl } from './ice-url.js';

/** config/agents/<id>.json: one agent's settings. Paths are relative to the file. */
export interface AgentConfig {
  file: string;
  agentId: string;
  keyFile: string;
  signaling: string[] | undefined;
  stun: string[] | undefined;
  turn: string[] | undefined;
  icePolicy: 'all' | 'relay' | undefined;
  mesh: string | undefined;
  loopback: boolean;
  metadata: Record<string, unknown>;
}

const FIELDS = new Set([
  'agent_id',
  'key',
  'signaling',
  'stun',
  'turn',
  'ice_policy',
  'mesh',
  'loopback',
  'metadata',
]);

/** Reads and validates an agent config; every problem names the file and the field (exit 2). */
export async function loadAgentConfig(file: string, display = file): Promise<AgentConfig> {
  const issue = (key: string | undefined, message: string, fix: string): ConfigIssue => ({
    file: display,
    line: undefined,
    key,
    message,
    fix,
  });
  let doc: unknown;
  try {
    doc = JSON.parse(await fs.readFile(file, 'utf8'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError([
      code === 'ENOENT'
        ? issue(undefined, 'file does not exist', 'pass the path of an agent config')
        : issue(undefined, `is not valid JSON (${(err as Error).message})`, 'fix the JSON syntax'),
    ]);
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc))
    throw new ConfigError([issue(undefined, 'must be a JSON object', 'see config/agents/agent-1.json')]);
  const d = doc as Record<string, unknown>;
  const issues: ConfigIssue[] = [];
  for (const k of Object.keys(d))
    if (!FIELDS.has(k))
      issues.push(issue(k, 'is not an agent config field', `use ${[...FIELDS].join(', ')}`));
  if (!isAgentId(d.agent_id))
    issues.push(issue('agent_id', 'is missing or not a valid agent id', `use ${AGENT_ID_RULE}`));
  if (typeof d.key !== 'string' || d.key === '')
    issues.push(issue('key', 'is required', 'the path of the identity file from `ifmesh keys generate`'));
  const urls = (
    key: string,
    schemes: Array<'stun' | 'stuns' | 'turn' | 'turns' | 'ws' | 'wss' | 'http' | 'https'>,
  ): string[] | undefined => {
    const v = d[key];
    if (v === undefined) return undefined;
    const list = typeof v === 'string' ? [v] : v;
    if (!Array.isArray(list) || !list.every((u) => typeof u === 'string')) {
      issues.push(issue(key, 'must be a URL or a list of URLs', `e.g. ["${schemes[0]}:…"]`));
      return undefined;
    }
    for (const [i, u] of list.entries()) {
      if (schemes.includes('ws')) {
        if (!/^(wss?|https?):\/\/[^\s/]+/i.test(u))
          issues.push(
            issue(`${key}[${i}]`, `"${u}" is not a ws(s):// or http(s):// URL`, 'e.g. ws://127.0.0.1:8443'),
          );
      } else {
        const p = parseIceUrl(u, schemes as Array<'stun' | 'stuns' | 'turn' | 'turns'>);
        if (typeof p === 'string') issues.push(issue(`${key}[${i}]`, p, `e.g. ${schemes[0]}:127.0.0.1:3478`));
      }
    }
    return list as string[];
  };
  const signaling = urls('signaling', ['ws', 'wss', 'http', 'https']);
  const stun = urls('stun', ['stun', 'stuns']);
  const turn = urls('turn', ['turn', 'turns']);
  if (d.ice_policy !== undefined && d.ice_policy !== 'all' && d.ice_policy !== 'relay')
    issues.push(issue('ice_policy', 'must be "all" or "relay"', 'set "ice_policy": "all"'));
  if (d.mesh !== undefined && (typeof d.mesh !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(d.mesh)))
    issues.push(issue('mesh', 'must be 1-64 characters of A-Z a-z 0-9 . _ -', 'e.g. "mesh": "blue"'));
  if (d.loopback !== undefined && typeof d.loopback !== 'boolean')
    issues.push(issue('loopback', 'must be true or false', 'set "loopback": true'));
  if (
    d.metadata !== undefined &&
    (!d.metadata || typeof d.metadata !== 'object' || Array.isArray(d.metadata))
  )
    issues.push(issue('metadata', 'must be an object', 'e.g. "metadata": {"region": "eu"}'));
  if (issues.length) throw new ConfigError(issues);
  return {
    file: display,
    agentId: d.agent_id as string,
    keyFile: path.resolve(path.dirname(file), d.key as string),
    signaling,
    stun,
    turn,
    icePolicy: d.ice_policy as 'all' | 'relay' | undefined,
    mesh: d.mesh as string | undefined,
    loopback: d.loopback === true,
    metadata: (d.metadata as Record<string, unknown>) ?? {},
  };
}
