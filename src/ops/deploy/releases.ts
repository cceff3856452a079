import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { statePaths } from '../../state/state-dir.js';

/** How one agent of a release is started: its config, where it connects, its --set overrides (as env). */
export interface AgentSpec {
  agent_id: string;
  /** Absolute path of config/agents/<id>.json. */
  config: string;
  signaling: string[];
  /** Configuration overrides passed to the agent as environment (never on its command line). */
  env: Record<string, string>;
  cwd: string;
}

/** What became of a release: deployed, promoted by a canary, failed a canary, or rolled back from. */
export type ReleaseOutcome = 'deployed' | 'promoted' | 'failed' | 'aborted' | 'rolled_back' | 'restored';

/** A deploy's record: what `rollback` and `canary` work from. */
export interface Release {
  id: string;
  deployment_id: string;
  ref: string;
  config_hash: string;
  created_at: string;
  /** The services of the release; `role` (newer records) says which are signaling instances. */
  processes: { name: string; port?: number; pid?: number; role?: 'signaling' | 'nginx' | 'redis' }[];
  agents: string[];
  /** ifmesh's own version that made it. */
  version?: string;
  /** The operator (login name) who made it. */
  who?: string;
  outcome?: ReleaseOutcome;
  /** Older records lack it: they cannot be rolled back to or canaried from. */
  agent_specs?: AgentSpec[];
}

/** Who runs this: $IFMESH_OPERATOR, else the login name. */
export function operator(env: Record<string, string | undefined>): string {
  if (env.IFMESH_OPERATOR) return env.IFMESH_OPERATOR;
  try {
    return os.userInfo().username;
  } catch {
    return env.USER ?? 'unknown';
  }
}

async function writeWhole(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, text);
  await fs.rename(tmp, file);
}

/** Writes a release record; `current` (the default) also makes it the running release. */
export async function recordRelease(
  stateDir: string,
  r: Release,
  keep = 10,
  current = true,
): Promise<string> {
  const p = statePaths(stateDir);
  const dir = p.releases;
  await fs.mkdir(dir, { recursive: true });
  const file = p.releaseFile(r.id);
  await writeWhole(file, `${JSON.stringify(r, null, 2)}\n`);
  if (current) await setCurrentRelease(stateDir, r.id);
  const cur = current ? r.id : (await currentRelease(stateDir))?.id;
  const all = (await fs.readdir(dir)).filter((f) => f.endsWith('.json')).sort();
  for (const old of all.slice(0, Math.max(0, all.length - keep)))
    if (old !== `${cur}.json`) await fs.unlink(path.join(dir, old));
  return file;
}

export async function setCurrentRelease(stateDir: string, id: string): Promise<void> {
  const p = statePaths(stateDir);
  await fs.mkdir(p.releases, { recursive: true });
  await writeWhole(p.currentRelease, `${id}\n`);
}

export async function readRelease(stateDir: string, id: string): Promise<Release | undefined> {
  try {
    return JSON.parse(await fs.readFile(statePaths(stateDir).releaseFile(id), 'utf8')) as Release;
  } catch {
    return undefined;
  }
}

/** Rewrites one field of a recorded release (its outcome after a canary or a rollback). */
export async function setReleaseOutcome(
  stateDir: string,
  id: string,
  outcome: ReleaseOutcome,
): Promise<void> {
  const r = await readRelease(stateDir, id);
  if (r)
    await writeWhole(statePaths(stateDir).releaseFile(id), `${JSON.stringify({ ...r, outcome }, null, 2)}\n`);
}

export async function currentRelease(stateDir: string): Promise<Release | undefined> {
  try {
    const id = (await fs.readFile(statePaths(stateDir).currentRelease, 'utf8')).trim();
    return await readRelease(stateDir, id);
  } catch {
    return undefined;
  }
}

/** Every recorded release, oldest first (ids start with their ISO creation time). */
export async function listReleases(stateDir: string): Promise<Release[]> {
  const dir = statePaths(stateDir).releases;
  let files: string[];
  try {
    files = (await fs.readdir(dir)).filter((f) => f.endsWith('.json')).sort();
  } catch {
    return [];
  }
  const all = await Promise.all(files.map((f) => readRelease(stateDir, path.basename(f, '.json'))));
  return all
    .filter((r): r is Release => r !== undefined)
    .sort((a, b) => a.created_at.localeCompare(b.created_at) || a.id.localeCompare(b.id));
}
