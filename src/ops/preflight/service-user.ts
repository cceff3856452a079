// Under systemd the services run as a dedicated user (`ifmesh` by default), not as the operator who
// ran deploy: every file a unit reads — the env file, the agents' configs and 0600 keys, the TLS
// certificate and key, the CA — must be readable by that user, through every directory above it.
// A unit that cannot read its key crash-loops under Restart=on-failure; this check says so before
// deploy, naming the file and the fix.
//
// The user and the files are looked up on the system that runs the units, through the systemd runner
// (`id`, `stat`): a container's or a remote host's user database and directories, not this one's.
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { loadAgentConfig } from '../../config/agent-config.js';
import type { SystemdRunner } from '../../exec/systemctl.js';
import { scanProcesses } from '../../state/processes.js';
import type { StateDir } from '../../state/state-dir.js';
import { type CheckOutcome, fail, ok } from './types.js';

export interface Identity {
  uid: number;
  /** Every group the user is in, its primary group first. */
  gids: number[];
}

export interface PathFacts {
  path: string;
  uid: number;
  gid: number;
  mode: number;
  dir: boolean;
}

/** Pure: the permission bit (r = 4, x = 1) `who` gets on `f`: owner, else group, else other. */
function allowed(who: Identity, f: PathFacts, bit: 4 | 1): boolean {
  if (who.uid === 0) return true;
  if (f.uid === who.uid) return (f.mode & (bit << 6)) !== 0;
  if (who.gids.includes(f.gid)) return (f.mode & (bit << 3)) !== 0;
  return (f.mode & bit) !== 0;
}

/**
 * Pure: where `who` is stopped on the way to reading a file: a directory above it it may not enter
 * (`chain` lists them from / down, the file last), or the file it may not read. undefined: readable.
 */
export function blockedAt(
  who: Identity,
  chain: PathFacts[],
): { at: PathFacts; why: 'enter' | 'read' } | undefined {
  for (const [i, f] of chain.entries()) {
    const last = i === chain.length - 1;
    if (last && !f.dir && !allowed(who, f, 4)) return { at: f, why: 'read' };
    if (!last && !allowed(who, f, 1)) return { at: f, why: 'enter' };
  }
  return undefined;
}

/** Pure: `file` and every directory above it, from / down. */
export function ancestry(file: string): string[] {
  const parts: string[] = [];
  for (let p = path.resolve(file); ; p = path.dirname(p)) {
    parts.unshift(p);
    if (p === path.dirname(p)) break;
  }
  return parts;
}

/**
 * The facts of `paths` as the units' system sees them (one `stat` through the runner: a container's
 * volatile root or a remote host has its own directories above a bound project).
 */
function statThere(runner: SystemdRunner, paths: string[]): Map<string, PathFacts> {
  const r = runner.run('stat', ['-L', '--printf', '%u %g %a %F\t%n\n', '--', ...paths]);
  const facts = new Map<string, PathFacts>();
  for (const line of r.stdout.split('\n')) {
    const tab = line.indexOf('\t');
    if (tab < 0) continue;
    const [uid, gid, mode, ...type] = line.slice(0, tab).split(' ');
    const p = line.slice(tab + 1);
    facts.set(p, {
      path: p,
      uid: Number(uid),
      gid: Number(gid),
      mode: Number.parseInt(mode!, 8),
      dir: type.join(' ') === 'directory',
    });
  }
  return facts;
}

/** Pure: one finding's text and fix. */
export function describeBlock(
  user: string,
  file: string,
  b: NonNullable<ReturnType<typeof blockedAt>>,
): {
  problem: string;
  fix: string;
} {
  return b.why === 'read'
    ? {
        problem: `${user} cannot read ${file} (owner ${b.at.uid}:${b.at.gid}, mode ${b.at.mode.toString(8).padStart(4, '0')})`,
        fix: `chown ${user}: ${file}`,
      }
    : {
        problem: `${user} cannot enter ${b.at.path} on the way to ${file} (mode ${b.at.mode.toString(8).padStart(4, '0')})`,
        fix: `chmod o+x ${b.at.path} (or chown ${user}: ${b.at.path})`,
      };
}

/**
 * Every file the units would read: the env file, the TLS files and the CA of the configuration, the
 * agent configs (the recorded agents' `--config`, else the project's config/agents/) and their keys.
 */
export async function filesUnitsRead(o: {
  cwd: string;
  state: StateDir;
  envFile: string | undefined;
  tls: (string | undefined)[];
}): Promise<string[]> {
  const files = new Set<string>();
  const add = (f: string | undefined, base = o.cwd) => {
    if (f) files.add(path.resolve(base, f));
  };
  add(o.envFile);
  for (const f of o.tls) add(f);
  const configs = new Set<string>();
  // What reads: a torn record is the status's to name, not a reason to skip this check.
  for (const r of scanProcesses(o.state).records) {
    if (!r.spec) continue;
    const i = r.spec.args.indexOf('--config');
    if (i >= 0 && r.spec.args[i + 1]) configs.add(path.resolve(r.spec.cwd, r.spec.args[i + 1]!));
    add(r.spec.env.IFMESH_CONFIG, r.spec.cwd);
    add(r.spec.env.SIGNALING_TLS_CERT, r.spec.cwd);
    add(r.spec.env.SIGNALING_TLS_KEY, r.spec.cwd);
    add(r.spec.env.IFMESH_CA_FILE, r.spec.cwd);
  }
  const agentsDir = path.join(o.cwd, 'config/agents');
  if (configs.size === 0 && existsSync(agentsDir))
    for (const f of readdirSync(agentsDir).filter((x) => x.endsWith('.json')))
      configs.add(path.join(agentsDir, f));
  for (const c of configs) {
    files.add(c);
    // A config that does not load is the configuration check's finding; its key is then unknown.
    const loaded = await loadAgentConfig(c).catch(() => undefined);
    if (loaded) files.add(loaded.keyFile);
  }
  return [...files].filter((f) => existsSync(f)).sort();
}

/** The preflight line: the user exists on the units' system and can read every file they read. */
export async function checkServiceUser(
  runner: SystemdRunner,
  user: string,
  files: string[],
): Promise<CheckOutcome> {
  const id = runner.run('id', ['-u', user]);
  if (id.code !== 0)
    return fail(
      `service user ${user} does not exist${runner.prefix.length ? ` (on ${runner.shown('', []).trim()})` : ''}`,
      `create it: systemd-sysusers --inline 'u ${user} - "ifmesh services" /var/lib/ifmesh', then chown ${user}: the files below`,
    );
  const who: Identity = {
    uid: Number(id.stdout.trim()),
    gids: runner.run('id', ['-G', user]).stdout.trim().split(/\s+/).filter(Boolean).map(Number),
  };
  const facts = statThere(runner, [...new Set(files.flatMap(ancestry))]);
  const found = files
    .map((f) => ({ f, chain: ancestry(f).map((p) => facts.get(p)) }))
    // A file the units' system does not have is the configuration's finding, not this one's.
    .filter((x): x is { f: string; chain: PathFacts[] } => x.chain.every((c) => c !== undefined))
    .map(({ f, chain }) => ({ f, b: blockedAt(who, chain) }))
    .filter((x): x is { f: string; b: NonNullable<typeof x.b> } => x.b !== undefined)
    .map((x) => describeBlock(user, x.f, x.b))
    // A directory that stops several files is named once.
    .filter((x, i, all) => all.findIndex((y) => y.fix === x.fix) === i);
  if (found.length === 0)
    return ok(`${user} (uid ${who.uid}) can read the ${files.length} files the units read`);
  return fail(found.map((x) => x.problem).join('; '), found.map((x) => x.fix).join('; '));
}
