// The release records of a state directory (<state>/releases/<id>.json, `current`): written whole
// (tmp + fsync + rename) and 0600, read strictly (a corrupt record is an error naming the file).
// A record never holds a secret: an agent's secret --set values live in the state's secrets file
// under a name scoped to the release, and the record keeps that name (AgentSpec.secret_env).
import {
  closeSync,
  promises as fs,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SECRET_KEYS } from '../../config/schema.js';
import { CheckFailedError, StateCorruptError } from '../../errors.js';
import { readStateJson, scanStateFiles, type UnreadableFile, writeStateJson } from '../../state/json-file.js';
import { isSecretEnvKey, secretEnv, storeSecretEnv } from '../../state/secrets.js';
import type { StateDir } from '../../state/state-dir.js';
import { type BuildRef, ownBin, pruneBuilds } from '../release/install.js';

/** How one agent of a release is started: its config, where it connects, its --set overrides (as env). */
export interface AgentSpec {
  agent_id: string;
  /** Absolute path of config/agents/<id>.json. */
  config: string;
  signaling: string[];
  /** Non-secret configuration overrides passed to the agent as environment (never on its command line). */
  env: Record<string, string>;
  /** Secret overrides: environment key -> the name its value is kept under in the state's secrets file. */
  secret_env?: Record<string, string>;
  cwd: string;
  /** The entry script the agent runs with this node: its release's (src/ops/release/install.ts); absent, the running ifmesh's. */
  bin?: string;
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
  processes: {
    name: string;
    port?: number;
    pid?: number;
    role?: 'signaling' | 'nginx' | 'redis';
    /** How it is reached (ws:// or wss://, newer records); older ones: http://127.0.0.1:port. */
    url?: string;
  }[];
  agents: string[];
  /** ifmesh's own version that made it. */
  version?: string;
  /** The operator (login name) who made it. */
  who?: string;
  outcome?: ReleaseOutcome;
  /** Older records lack it: they cannot be rolled back to or canaried from. */
  agent_specs?: AgentSpec[];
  /** A canary's candidate: its --set changes, secrets as [redacted] (what promotion compares). */
  changes?: Record<string, string>;
  /** The installed code it runs (`--release`); absent: the running ifmesh's own. */
  build?: BuildRef;
}

/** The entry script the release's signaling instances run: its build's, else the running ifmesh's. */
export const releaseBin = (r: Pick<Release, 'build'>): string => r.build?.bin ?? ownBin();

/** Who runs this: $IFMESH_OPERATOR, else the login name. */
export function operator(env: Record<string, string | undefined>): string {
  if (env.IFMESH_OPERATOR) return env.IFMESH_OPERATOR;
  try {
    return os.userInfo().username;
  } catch {
    return env.USER ?? 'unknown';
  }
}

/** A key whose value is a secret: marked so in the config schema, or named like one. */
export const isSecretKey = (key: string) => SECRET_KEYS.has(key) || isSecretEnvKey(key);

/**
 * The specs with every secret env value moved into the state's secrets file, under
 * `release:<releaseId>:<KEY>` (scoped, so two releases setting one key never overwrite each other's).
 */
export function sealSpecs(state: StateDir, releaseId: string, specs: AgentSpec[]): AgentSpec[] {
  const store: Record<string, string> = {};
  const sealed = specs.map((s) => {
    const secret = Object.keys(s.env).filter(isSecretKey);
    if (!secret.length) return s;
    const refs = { ...s.secret_env };
    for (const k of secret) {
      refs[k] = `release:${releaseId}:${k}`;
      store[refs[k]] = s.env[k]!;
    }
    const env = Object.fromEntries(Object.entries(s.env).filter(([k]) => !isSecretKey(k)));
    return { ...s, env, secret_env: refs };
  });
  storeSecretEnv(state, store);
  return sealed;
}

export const sealRelease = (state: StateDir, r: Release): Release =>
  r.agent_specs ? { ...r, agent_specs: sealSpecs(state, r.id, r.agent_specs) } : r;

/** The whole environment an agent starts with: its spec's, with its secrets read back. */
export function specEnv(state: StateDir, spec: AgentSpec): Record<string, string> {
  const refs = Object.entries(spec.secret_env ?? {});
  const stored = secretEnv(
    state,
    refs.map(([, name]) => name),
  );
  const lost = refs.filter(([, name]) => stored[name] === undefined).map(([k]) => k);
  if (lost.length)
    throw new CheckFailedError(
      `agent ${spec.agent_id}: the secret value of ${lost.join(', ')} is not in ${state.secrets}`,
      'restore the secrets file from a backup, or run the canary or deploy again with the --set value',
      'secret_missing',
    );
  return { ...spec.env, ...Object.fromEntries(refs.map(([k, name]) => [k, stored[name]!])) };
}

function releasesDir(state: StateDir): string {
  const dir = state.releases;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

const isRelease = (v: unknown) => {
  const r = v as Partial<Release> | null;
  return typeof r?.id === 'string' && typeof r.ref === 'string' && Array.isArray(r.agents);
};

/** Writes a release record; `current` (the default) also makes it the running release. */
export async function recordRelease(state: StateDir, r: Release, keep = 10, current = true): Promise<string> {
  const dir = releasesDir(state);
  const file = state.releaseFile(r.id);
  writeStateJson(file, sealRelease(state, r), 0o600);
  if (current) await setCurrentRelease(state, r.id);
  const cur = current ? r.id : (await currentRelease(state))?.id;
  const all = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort();
  for (const old of all.slice(0, Math.max(0, all.length - keep)))
    if (old !== `${cur}.json`) unlinkSync(path.join(dir, old));
  // The installed code of the releases kept stays installed (rollback is a switch); the rest goes.
  const kept = await listReleases(state);
  pruneBuilds(state, new Set(kept.flatMap((k) => (k.build ? [k.build.id] : []))));
  return file;
}

/** `current` holds the id alone (scripts read it with cat); written whole like every state file. */
export async function setCurrentRelease(state: StateDir, id: string): Promise<void> {
  releasesDir(state);
  const file = state.currentRelease;
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, `${id}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}

/** The record of release `id`; undefined when there is none; a record that does not parse is an error. */
export async function readRelease(state: StateDir, id: string): Promise<Release | undefined> {
  return readReleaseFile(state, id);
}

function readReleaseFile(state: StateDir, id: string): Release | undefined {
  return readStateJson<Release>(
    state.releaseFile(id),
    isRelease,
    'restore it from a backup or delete it (`ifmesh releases` then lists the others)',
  );
}

/** Every release record that reads, in id order, and those that no longer parse (named, not thrown). */
export function scanReleases(state: StateDir): { records: Release[]; unreadable: UnreadableFile[] } {
  return scanStateFiles(state.releases, (id) => readReleaseFile(state, id));
}

/** Rewrites one field of a recorded release (its outcome after a canary or a rollback). */
export async function setReleaseOutcome(state: StateDir, id: string, outcome: ReleaseOutcome): Promise<void> {
  const r = await readRelease(state, id);
  if (r) writeStateJson(state.releaseFile(id), sealRelease(state, { ...r, outcome }), 0o600);
}

export async function currentRelease(state: StateDir): Promise<Release | undefined> {
  let id: string;
  try {
    id = (await fs.readFile(state.currentRelease, 'utf8')).trim();
  } catch {
    return undefined;
  }
  const file = state.currentRelease;
  // `current` naming no record (truncated, or its record removed) is not "no release": say so.
  const r = id ? await readRelease(state, id) : undefined;
  if (!r)
    throw new StateCorruptError(
      file,
      'write the id of a release `ifmesh releases` lists into it (the newest that ran well), or delete it',
      id
        ? `it names release ${JSON.stringify(id)}, which has no record`
        : 'it is empty: it should hold a release id',
    );
  return r;
}

/**
 * currentRelease, with a state file that no longer parses (`current` naming no record, or the
 * record it names torn) returned beside it for a view to name, instead of thrown.
 */
export async function currentReleaseOrBroken(
  state: StateDir,
): Promise<{ release: Release | undefined; broken: StateCorruptError | undefined }> {
  try {
    return { release: await currentRelease(state), broken: undefined };
  } catch (err) {
    if (!(err instanceof StateCorruptError)) throw err;
    return { release: undefined, broken: err };
  }
}

/** Every recorded release, oldest first (ids start with their ISO creation time). */
export async function listReleases(state: StateDir): Promise<Release[]> {
  let files: string[];
  try {
    files = (await fs.readdir(state.releases)).filter((f) => f.endsWith('.json')).sort();
  } catch {
    return [];
  }
  const all = await Promise.all(files.map((f) => readRelease(state, path.basename(f, '.json'))));
  return all
    .filter((r): r is Release => r !== undefined)
    .sort((a, b) => a.created_at.localeCompare(b.created_at) || a.id.localeCompare(b.id));
}
