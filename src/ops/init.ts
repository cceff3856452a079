// `ifmesh init`: a newcomer's project before `ifmesh deploy` — the env file with every key of the
// schema (commented, secrets generated) and, per agent, its config and Ed25519 identity. A pure plan
// (every target and whether it exists) comes first, so a refusal writes nothing at all; apply then
// writes each file atomically (temp file + rename, mode set from the start).

import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { DEFAULT_CONFIG_PATH } from '../config/load.js';
import { CONFIG_KEYS, KEY_SPECS, type KeySpec } from '../config/schema.js';
import { writeAtomic } from '../crypto/key-file.js';
import { UsageError } from '../errors.js';
import { generateKeys } from './keys.js';

export type InitFileKind = 'config' | 'agent-config' | 'key' | 'public-key';

export interface InitFile {
  /** Absolute path. */
  path: string;
  kind: InitFileKind;
  /** Octal permission bits the file is written with, e.g. "0600". */
  mode: string;
}

export interface InitOptions {
  /** The project directory; the paths below are relative to it unless absolute. */
  dir: string;
  agents: number;
  configFile: string;
  agentsDir: string;
  keysDir: string;
  force: boolean;
  /** Where the operator stands, for the next commands' paths. */
  cwd: string;
  now: Date;
}

export interface InitPlan {
  files: InitFile[];
  agent_ids: string[];
  /** Targets that exist already: a refusal without --force, replaced with it. */
  existing: string[];
  next: string[];
}

export interface InitReport {
  dry_run: boolean;
  files: InitFile[];
  /** Files that existed and were (or, in a dry run, would be) replaced; only with --force. */
  replaced: string[];
  next: string[];
}

/** Secrets init makes up when the schema has the key: long enough that nobody guesses them. */
const GENERATED_SECRETS = ['IF_WITNESS_API_KEY', 'SIGNALING_ADMIN_TOKEN', 'TURN_PASSWORD'] as const;
/** A TURN password with no user is half a credential; this user is a name, not a secret. */
const TURN_USER = 'ifmesh';

const MODES: Record<InitFileKind, number> = {
  config: 0o600,
  'agent-config': 0o644,
  key: 0o600,
  'public-key': 0o644,
};

interface Paths {
  config: string;
  agentsDir: string;
  keysDir: string;
}

function resolvePaths(o: InitOptions): Paths {
  return {
    config: path.resolve(o.dir, o.configFile),
    agentsDir: path.resolve(o.dir, o.agentsDir),
    keysDir: path.resolve(o.dir, o.keysDir),
  };
}

/** Pure: every file init writes and the commands to run after it, given which targets exist. */
export function planInit(o: InitOptions, exists: (file: string) => boolean): InitPlan {
  const p = resolvePaths(o);
  const agentIds = Array.from({ length: o.agents }, (_, i) => `agent-${i + 1}`);
  const file = (f: string, kind: InitFileKind): InitFile => ({
    path: f,
    kind,
    mode: `0${MODES[kind].toString(8)}`,
  });
  const files = [
    file(p.config, 'config'),
    ...agentIds.flatMap((id) => [
      file(path.join(p.agentsDir, `${id}.json`), 'agent-config'),
      file(path.join(p.keysDir, `${id}.key`), 'key'),
      file(path.join(p.keysDir, `${id}.pub`), 'public-key'),
    ]),
  ];
  return {
    files,
    agent_ids: agentIds,
    existing: files.map((f) => f.path).filter(exists),
    next: nextCommands(o, p),
  };
}

function nextCommands(o: InitOptions, p: Paths): string[] {
  const dir = path.resolve(o.cwd, o.dir);
  const fromCwd = path.relative(o.cwd, dir);
  // Both commands find config/webrtc-production.env in the directory they run in by themselves.
  const config =
    p.config === path.join(dir, DEFAULT_CONFIG_PATH)
      ? ''
      : ` --config ${shellQuote(path.relative(dir, p.config))}`;
  return [
    ...(fromCwd ? [`cd ${shellQuote(fromCwd)}`] : []),
    `ifmesh preflight${config}`,
    `ifmesh deploy${config} --agents-dir ${shellQuote(path.relative(dir, p.agentsDir) || '.')}`,
  ];
}

/** Relative to the operator's directory when inside it, else absolute. */
export function displayPath(cwd: string, file: string): string {
  const rel = path.relative(cwd, file);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Plans, refuses to overwrite without --force, then (unless a dry run) writes every file. */
export async function init(o: InitOptions, dryRun: boolean): Promise<InitReport> {
  const plan = planInit(o, await existingOf(resolveAll(o)));
  if (plan.existing.length && !o.force) {
    const [first, ...rest] = plan.existing.map((f) => displayPath(o.cwd, f));
    throw new UsageError(
      `${first} already exists${rest.length ? ` (and ${rest.length} more)` : ''}; pass --force to overwrite`,
      rest.length ? `also existing: ${rest.join(', ')}; nothing was written` : 'nothing was written',
      'file_exists',
    );
  }
  const report = { dry_run: dryRun, files: plan.files, replaced: plan.existing, next: plan.next };
  if (dryRun) return report;
  await applyInit(o, plan);
  return report;
}

function resolveAll(o: InitOptions): string[] {
  return planInit(o, () => false).files.map((f) => f.path);
}

async function existingOf(files: string[]): Promise<(file: string) => boolean> {
  const found = new Set<string>();
  const exists = (f: string) =>
    fs.lstat(f).then(
      () => true,
      () => false,
    );
  for (const f of files) if (await exists(f)) found.add(f);
  return (f) => found.has(f);
}

async function applyInit(o: InitOptions, plan: InitPlan): Promise<void> {
  const p = resolvePaths(o);
  await fs.mkdir(p.agentsDir, { recursive: true });
  for (const id of plan.agent_ids) {
    await generateKeys({ agentId: id, outDir: p.keysDir, force: o.force, now: o.now });
    const keyRef = path.relative(p.agentsDir, path.join(p.keysDir, `${id}.key`));
    await writeAtomic(
      path.join(p.agentsDir, `${id}.json`),
      `${JSON.stringify({ agent_id: id, key: keyRef }, null, 2)}\n`,
      MODES['agent-config'],
      o.force,
    );
  }
  const secrets = Object.fromEntries(
    GENERATED_SECRETS.filter((k) => KEY_SPECS.has(k)).map((k) => [k, randomBytes(24).toString('base64url')]),
  );
  await fs.mkdir(path.dirname(p.config), { recursive: true });
  await writeAtomic(p.config, renderEnvFile(secrets, o.now), MODES.config, o.force);
}

/** Pure: the env file — every schema key with its description and default, `values` overriding. */
export function renderEnvFile(values: Record<string, string>, now: Date): string {
  const v: Record<string, string> = { ...values };
  if (v.TURN_PASSWORD && KEY_SPECS.has('TURN_USERNAME')) v.TURN_USERNAME ??= TURN_USER;
  const head = [
    `ifmesh mesh configuration, written by \`ifmesh init\` at ${now.toISOString()}.`,
    'Every key ifmesh reads, with what it is for and its default. Precedence: --set KEY=VALUE >',
    'environment > this file > default. Relative paths are relative to this file.',
    'It holds secrets generated at random: keep it mode 0600 and out of version control.',
    '',
    'PRODUCTION_MODE=false until SIGNALING_TLS_CERT, SIGNALING_TLS_KEY and TURN_SERVERS are filled in;',
    'with true, `ifmesh config check` enforces the production rules (TLS files readable, a TURN server',
    'with credentials, no template placeholders).',
  ];
  const lines = head.map((l) => (l ? `# ${l}` : '#'));
  for (const spec of CONFIG_KEYS) {
    const value = v[spec.key] ?? spec.default;
    lines.push('', ...describe(spec, spec.key in v), `${spec.key}=${envValue(value)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The schema's description, then the default and whether it is a secret ifmesh init made up. */
function describe(spec: KeySpec, set: boolean): string[] {
  const notes = [
    `default: ${spec.default === '' ? '(empty)' : spec.default}`,
    spec.secret ? 'secret: never printed by ifmesh' : '',
    set ? (spec.secret ? 'generated by ifmesh init' : 'set by ifmesh init') : '',
  ].filter(Boolean);
  return [...wrapComment(spec.describe.replace(/\s+/g, ' ')), `# ${notes.join('; ')}`];
}

function wrapComment(text: string, width = 100): string[] {
  const out: string[] = [];
  let line = '#';
  for (const word of text.split(' ')) {
    if (line.length > 1 && line.length + 1 + word.length > width) {
      out.push(line);
      line = '#';
    }
    line += ` ${word}`;
  }
  out.push(line);
  return out;
}

/** Bare when the env-file parser reads it back unchanged, else double-quoted with escapes. */
function envValue(value: string): string {
  return /^[^\s"'#\\]*$/.test(value) ? value : `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}
