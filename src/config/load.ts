import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { ConfigError, type ConfigIssue } from '../errors.js';
import { parseEnvFile } from './env-file.js';
import { type IceUrl, isHost, parseIceUrl } from './ice-url.js';
import { ONCALL_KEY, type OncallLevel, parseOncallLevel } from './oncall.js';
import { CONFIG_KEYS, KEY_SPECS, type KeySpec, PLACEHOLDERS } from './schema.js';
import { PRODUCTION_STAGE, stageEnvFile } from './stage.js';

export const DEFAULT_CONFIG_PATH = 'config/webrtc-production.env';

export interface MeshConfig {
  signalingHost: string;
  signalingPort: number;
  signalingTlsCert: string | undefined;
  signalingTlsKey: string | undefined;
  /** IFMESH_CA_FILE, absolute: the CA https/wss connections verify against besides the system's. */
  caFile: string | undefined;
  /** The URL agents dial ('' when not configured): the front door's public name. */
  signalingPublicUrl: string;
  stunServers: IceUrl[];
  turnServers: IceUrl[];
  turnUsername: string;
  turnPassword: string;
  turnFallbackTimeoutMs: number;
  /** AGENT_RECONNECT_MAX_MS: the cap of an agent's reconnection backoff when no instance answers. */
  agentReconnectMaxMs: number;
  /** AGENT_ICE_ADDRESSES: where agents gather host candidates (addresses or interface names); []: everywhere. */
  agentIceAddresses: string[];
  productionMode: boolean;
  iceTransportPolicy: 'all' | 'relay';
  allowSelfSignedCerts: boolean;
  enableCertValidation: boolean;
  enableSrtpKeyRotation: boolean;
  srtpKeyRotationIntervalMs: number;
  /** Base URL of IF.witness; a trailing /api/log (as in the runbook's template) is removed. */
  witnessUrl: string;
  witnessApiKey: string;
  grafanaDatasourceUrl: string;
  alertEmail: string;
  pagerdutyIntegrationKey: string;
  signalingAdminToken: string;
  /** The allow-list file of agents that may register (SIGNALING_ALLOW_KEYS); undefined: any agent. */
  signalingAllowKeys: string | undefined;
  /** redis:// URL shared by signaling instances; '' when standalone. */
  signalingClusterUrl: string;
  /** IF.witness on PostgreSQL when set (postgres:// URL). */
  witnessDbUrl: string;
  pagerdutyEventsUrl: string;
  slackWebhookUrl: string;
  smtpUrl: string;
  /** The runbook's team channel for incident posts (#incident-response). */
  slackIncidentChannel: string;
  /** The on-call roster, level 1 first (ONCALL_LEVEL_N; empty ones dropped). */
  oncall: OncallLevel[];
  /** Agents the mesh is sized for (weekly maintenance's capacity headroom). */
  maintenanceMaxAgents: number;
  /** certbot's --config-dir; undefined: certbot's own default (/etc/letsencrypt). */
  certbotConfigDir: string | undefined;
}

export type Source =
  | { kind: 'flag' }
  | { kind: 'env' }
  | { kind: 'file'; file: string; line: number }
  /** Implied by --stage (PRODUCTION_MODE under --stage production). */
  | { kind: 'stage'; stage: string }
  | { kind: 'default' };

export interface LoadedConfig {
  /** The env file read, if any. */
  file: string | undefined;
  /** The stage (--stage) the configuration is of; undefined: the unnamed environment. */
  stage?: string | undefined;
  config: MeshConfig;
  /** The effective raw value of every key. */
  raw: Record<string, string>;
  sources: Record<string, Source>;
  warnings: string[];
  /** With `productionRules: 'report'`, what the production rules found instead of throwing; else []. */
  productionIssues: ConfigIssue[];
}

export interface LoadOptions {
  cwd: string;
  env: Record<string, string | undefined>;
  /** --config; when given, the file must exist. */
  file?: string | undefined;
  /**
   * --stage: without --config, the stage's env file (config/webrtc-<stage>.env), which must exist,
   * in place of IFMESH_CONFIG and the default; `production` also implies PRODUCTION_MODE=true.
   */
  stage?: string | undefined;
  /** --set KEY=VALUE, highest precedence. */
  flags?: Record<string, string>;
  /**
   * 'enforce' (default): a PRODUCTION_MODE config that breaks a production rule throws. 'report':
   * those issues come back in `productionIssues`, for preflight and deploy, which judge them with
   * the rest of the production checks (src/ops/preflight/production.ts) and name every one.
   */
  productionRules?: 'enforce' | 'report';
}

/** Precedence: flag > environment > file > default. Throws ConfigError listing every problem. */
export async function loadConfig(opts: LoadOptions): Promise<LoadedConfig> {
  const issues: ConfigIssue[] = [];
  const warnings: string[] = [];
  const stageFile = opts.stage === undefined ? undefined : stageEnvFile(opts.stage);
  const explicit = opts.file ?? stageFile ?? opts.env.IFMESH_CONFIG;
  let file: string | undefined;
  let fileEntries = new Map<string, { value: string; line: number }>();

  if (explicit) {
    file = path.resolve(opts.cwd, explicit);
  } else {
    const candidate = path.resolve(opts.cwd, DEFAULT_CONFIG_PATH);
    if (await exists(candidate)) file = candidate;
  }
  const shown = file ? displayPath(opts.cwd, file) : undefined;
  if (file) {
    let text: string | undefined;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new ConfigError([
        {
          file: shown,
          line: undefined,
          key: undefined,
          message: code === 'ENOENT' ? 'file does not exist' : `cannot be read (${code})`,
          fix:
            code !== 'ENOENT'
              ? 'check its permissions'
              : opts.file === undefined && stageFile
                ? `create ${stageFile}, stage ${opts.stage}'s env file (the template of ${DEFAULT_CONFIG_PATH} with this stage's ports and endpoints), or pass --config FILE`
                : (await exists(path.resolve(opts.cwd, DEFAULT_CONFIG_PATH)))
                  ? // the default is there: creating it is no fix (the drill's hint said so anyway)
                    `check the path, or ${opts.file !== undefined ? 'drop --config' : 'unset IFMESH_CONFIG'} to read ${DEFAULT_CONFIG_PATH}`
                  : `pass the path of your env file, or create ${DEFAULT_CONFIG_PATH}`,
        },
      ]);
    }
    const parsed = parseEnvFile(text, shown!);
    issues.push(...parsed.issues);
    fileEntries = parsed.entries;
    for (const entry of parsed.entries.values()) {
      if (!KEY_SPECS.has(entry.key)) {
        const hint = suggest(entry.key);
        warnings.push(
          `${shown}:${entry.line}: unknown key ${entry.key}${hint ? ` (did you mean ${hint}?)` : ''}; it is ignored`,
        );
      }
    }
  }

  for (const key of Object.keys(opts.flags ?? {})) {
    if (!KEY_SPECS.has(key)) {
      const hint = suggest(key);
      issues.push({
        file: '--set',
        line: undefined,
        key,
        message: 'is not a configuration key',
        fix: hint ? `did you mean ${hint}?` : "run 'ifmesh config show' for the list of keys",
      });
    }
  }

  const raw: Record<string, string> = {};
  const sources: Record<string, Source> = {};
  for (const spec of CONFIG_KEYS) {
    const flag = opts.flags?.[spec.key];
    const envValue = opts.env[spec.key];
    const fromFile = fileEntries.get(spec.key);
    if (flag !== undefined) {
      raw[spec.key] = flag;
      sources[spec.key] = { kind: 'flag' };
    } else if (envValue !== undefined) {
      raw[spec.key] = envValue;
      sources[spec.key] = { kind: 'env' };
    } else if (fromFile) {
      raw[spec.key] = fromFile.value;
      sources[spec.key] = { kind: 'file', file: shown!, line: fromFile.line };
    } else {
      raw[spec.key] = spec.default;
      sources[spec.key] = { kind: 'default' };
    }
  }

  if (opts.stage === PRODUCTION_STAGE) impliedProduction(opts.stage, raw, sources, issues);

  const at = (key: string, message: string, fix: string): ConfigIssue => {
    const s = sources[key]!;
    if (s.kind === 'file') return { file: s.file, line: s.line, key, message, fix };
    if (s.kind === 'env') return { file: 'environment', line: undefined, key, message, fix };
    if (s.kind === 'flag') return { file: '--set', line: undefined, key, message, fix };
    return { file: shown, line: undefined, key, message, fix };
  };

  const baseDir = (key: string) => {
    const s = sources[key]!;
    return s.kind === 'file' && file ? path.dirname(file) : opts.cwd;
  };

  const typed: Record<string, unknown> = {};
  for (const spec of CONFIG_KEYS) {
    const result = convert(spec, raw[spec.key]!, baseDir(spec.key));
    if (result instanceof Invalid) {
      issues.push(at(spec.key, result.issue, result.fix));
    } else {
      typed[spec.key] = result;
    }
  }

  if (issues.length === 0) {
    const config = toMeshConfig(typed);
    oncallIssues(config, at, issues);
    // Every https/wss connection would fail on it: said here, where `config check` sees it too.
    const caProblem = config.caFile ? await unreadable(config.caFile) : undefined;
    if (caProblem)
      issues.push(
        at(
          'IFMESH_CA_FILE',
          `${config.caFile} ${caProblem}`,
          'point it at the PEM file of your CA, or leave it empty',
        ),
      );
    const productionIssues: ConfigIssue[] = [];
    if (config.productionMode) await productionRules(config, raw, at, productionIssues);
    if (opts.productionRules !== 'report') issues.push(...productionIssues.splice(0));
    if (issues.length === 0)
      return { file: shown, stage: opts.stage, config, raw, sources, warnings, productionIssues };
  }
  throw Object.assign(new ConfigError(issues), { warnings });
}

/**
 * --stage production runs in production mode whatever the file says: PRODUCTION_MODE is true, and
 * a PRODUCTION_MODE=false set anywhere is an error rather than a silent way out of the rules.
 */
function impliedProduction(
  stage: string,
  raw: Record<string, string>,
  sources: Record<string, Source>,
  issues: ConfigIssue[],
): void {
  const s = sources.PRODUCTION_MODE!;
  if (s.kind !== 'default' && raw.PRODUCTION_MODE!.toLowerCase() !== 'true') {
    const where =
      s.kind === 'file'
        ? { file: s.file, line: s.line }
        : { file: s.kind === 'env' ? 'environment' : '--set', line: undefined };
    issues.push({
      ...where,
      key: 'PRODUCTION_MODE',
      message: `is ${JSON.stringify(raw.PRODUCTION_MODE)}, but --stage ${stage} always runs in production mode`,
      fix: 'remove it or set PRODUCTION_MODE=true (a stage meant to be lax needs another name, e.g. staging)',
    });
    return;
  }
  raw.PRODUCTION_MODE = 'true';
  sources.PRODUCTION_MODE = { kind: 'stage', stage };
}

function urlOf(value: string): URL | undefined {
  try {
    return new URL(value);
  } catch {
    return undefined;
  }
}

class Invalid {
  constructor(
    readonly issue: string,
    readonly fix: string,
  ) {}
}

/** The longest delay a Node timer takes (2^31-1 ms, about 24.8 days); longer ones fire at once. */
const MAX_TIMER_MS = 2_147_483_647;

function convert(spec: KeySpec, value: string, baseDir: string): unknown {
  // Secrets are never echoed: an issue about one says what is wrong, not what it is.
  const shown = spec.secret ? '(hidden)' : JSON.stringify(value);
  switch (spec.kind) {
    case 'host':
      return value === '' || isHost(value) || value === '::'
        ? value
        : new Invalid(`${shown} is not a host name or IP address`, 'use e.g. 0.0.0.0 or 127.0.0.1');
    case 'port': {
      const n = /^\d{1,5}$/.test(value) ? Number(value) : Number.NaN;
      return n >= 1 && n <= 65535
        ? n
        : new Invalid(`${shown} is not a port number (1-65535)`, `set it to e.g. ${spec.default}`);
    }
    case 'ms': {
      const n = /^\d{1,15}$/.test(value) ? Number(value) : Number.NaN;
      if (!Number.isSafeInteger(n))
        return new Invalid(
          `${shown} is not a whole number of milliseconds`,
          `set it to e.g. ${spec.default} (no units)`,
        );
      // Longer than a Node timer can wait (it would fire at once), or under the key's floor.
      const min = spec.min ?? 0;
      if (n < min || n > MAX_TIMER_MS)
        return new Invalid(
          `${shown} is outside ${min}-${MAX_TIMER_MS} ms`,
          `set it to e.g. ${spec.default} (no units)`,
        );
      return n;
    }
    case 'bool': {
      const v = value.toLowerCase();
      if (v === 'true') return true;
      if (v === 'false') return false;
      return new Invalid(`${shown} is not true or false`, `set it to true or false`);
    }
    case 'policy':
      return value === 'all' || value === 'relay'
        ? value
        : new Invalid(
            `${shown} is not a valid ICE transport policy`,
            'use "all" (direct and relay) or "relay" (relay only)',
          );
    case 'stun-list':
    case 'turn-list': {
      const allowed = spec.kind === 'stun-list' ? (['stun', 'stuns'] as const) : (['turn', 'turns'] as const);
      const urls: IceUrl[] = [];
      for (const item of value
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)) {
        const parsed = parseIceUrl(item, allowed);
        if (typeof parsed === 'string') {
          return new Invalid(
            parsed,
            `write each as ${allowed[0]}:host:port${spec.kind === 'turn-list' ? '?transport=udp' : ''}, separated by commas`,
          );
        }
        urls.push(parsed);
      }
      return urls;
    }
    case 'http-url': {
      if (value === '') return value;
      let url: URL;
      try {
        url = new URL(value);
      } catch {
        return new Invalid(`${redactUrl(value)} is not a URL`, 'use http://host:port or https://host');
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') {
        return new Invalid(
          `${redactUrl(value)} must be an http:// or https:// URL`,
          'use http://host:port or https://host',
        );
      }
      return value;
    }
    case 'signaling-url': {
      if (value === '') return value;
      const url = urlOf(value);
      if (!url || !/^(wss?|https?):$/.test(url.protocol) || !url.hostname || url.pathname.length > 1)
        return new Invalid(
          `${redactUrl(value)} is not a signaling URL`,
          'use wss://HOST[:PORT] (ws://, https:// and http:// also work), without a path',
        );
      return value;
    }
    case 'redis-url': {
      if (value === '') return value;
      const url = urlOf(value);
      if (!url || (url.protocol !== 'redis:' && url.protocol !== 'rediss:') || !url.hostname) {
        return new Invalid(
          `${redactUrl(value)} is not a redis:// URL`,
          'use redis://host:port (rediss:// for TLS, redis://:password@host:port with a password)',
        );
      }
      return value;
    }
    case 'path':
      return value === '' ? undefined : path.resolve(baseDir, value);
    case 'count': {
      const n = /^\d{1,9}$/.test(value) ? Number(value) : Number.NaN;
      return n >= 1
        ? n
        : new Invalid(`${shown} is not a whole number of at least 1`, `set it to e.g. ${spec.default}`);
    }
    case 'oncall': {
      const level = parseOncallLevel(Number(ONCALL_KEY.exec(spec.key)?.[1] ?? 0), value);
      return typeof level === 'string'
        ? new Invalid(
            level,
            'write it as "ROLE; person=NAME; via=pagerduty,slack:@mention,email:ADDRESS; respond=15m; when=L1 unavailable"',
          )
        : level;
    }
    case 'email':
      return value === '' || /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(value)
        ? value
        : new Invalid(`${shown} is not an e-mail address`, 'use e.g. ops-team@example.com');
    default:
      return value;
  }
}

function toMeshConfig(t: Record<string, unknown>): MeshConfig {
  const endpoint = t.IF_WITNESS_ENDPOINT as string;
  return {
    signalingHost: t.SIGNALING_HOST as string,
    signalingPort: t.SIGNALING_PORT as number,
    signalingTlsCert: t.SIGNALING_TLS_CERT as string | undefined,
    signalingTlsKey: t.SIGNALING_TLS_KEY as string | undefined,
    caFile: t.IFMESH_CA_FILE as string | undefined,
    signalingPublicUrl: t.SIGNALING_PUBLIC_URL as string,
    stunServers: t.STUN_SERVERS as IceUrl[],
    turnServers: t.TURN_SERVERS as IceUrl[],
    turnUsername: t.TURN_USERNAME as string,
    turnPassword: t.TURN_PASSWORD as string,
    turnFallbackTimeoutMs: t.TURN_FALLBACK_TIMEOUT_MS as number,
    agentReconnectMaxMs: t.AGENT_RECONNECT_MAX_MS as number,
    agentIceAddresses: String(t.AGENT_ICE_ADDRESSES ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    productionMode: t.PRODUCTION_MODE as boolean,
    iceTransportPolicy: t.ICE_TRANSPORT_POLICY as 'all' | 'relay',
    allowSelfSignedCerts: t.ALLOW_SELF_SIGNED_CERTS as boolean,
    enableCertValidation: t.ENABLE_CERT_VALIDATION as boolean,
    enableSrtpKeyRotation: t.ENABLE_SRTP_KEY_ROTATION as boolean,
    srtpKeyRotationIntervalMs: t.SRTP_KEY_ROTATION_INTERVAL_MS as number,
    witnessUrl: endpoint.replace(/\/+$/, '').replace(/\/api\/(log|events)$/, ''),
    witnessApiKey: t.IF_WITNESS_API_KEY as string,
    grafanaDatasourceUrl: t.GRAFANA_DATASOURCE_URL as string,
    alertEmail: t.ALERT_EMAIL as string,
    pagerdutyIntegrationKey: t.PAGERDUTY_INTEGRATION_KEY as string,
    signalingAdminToken: t.SIGNALING_ADMIN_TOKEN as string,
    signalingAllowKeys: t.SIGNALING_ALLOW_KEYS as string | undefined,
    signalingClusterUrl: t.SIGNALING_CLUSTER_URL as string,
    witnessDbUrl: t.WITNESS_DB_URL as string,
    pagerdutyEventsUrl: t.PAGERDUTY_EVENTS_URL as string,
    slackWebhookUrl: t.SLACK_WEBHOOK_URL as string,
    smtpUrl: t.SMTP_URL as string,
    slackIncidentChannel: t.SLACK_INCIDENT_CHANNEL as string,
    oncall: CONFIG_KEYS.filter((k) => k.kind === 'oncall')
      .map((k) => t[k.key] as OncallLevel | null)
      .filter((l): l is OncallLevel => l !== null)
      .sort((a, b) => a.level - b.level),
    maintenanceMaxAgents: t.MAINTENANCE_MAX_AGENTS as number,
    certbotConfigDir: t.CERTBOT_CONFIG_DIR as string | undefined,
  };
}

type At = (key: string, message: string, fix: string) => ConfigIssue;

/** A level waiting on a level that is not in the roster would never be paged. */
function oncallIssues(c: MeshConfig, at: At, issues: ConfigIssue[]): void {
  const levels = new Set(c.oncall.map((l) => l.level));
  for (const l of c.oncall)
    if (l.when.kind === 'unavailable' && !levels.has(l.when.level))
      issues.push(
        at(
          `ONCALL_LEVEL_${l.level}`,
          `waits on level ${l.when.level}, which is empty`,
          `set ONCALL_LEVEL_${l.when.level}, or give this level another when=`,
        ),
      );
}

async function productionRules(
  c: MeshConfig,
  raw: Record<string, string>,
  at: At,
  issues: ConfigIssue[],
): Promise<void> {
  const why = 'when PRODUCTION_MODE=true';
  if (c.allowSelfSignedCerts)
    issues.push(at('ALLOW_SELF_SIGNED_CERTS', `must be false ${why}`, 'set ALLOW_SELF_SIGNED_CERTS=false'));
  if (!c.enableCertValidation)
    issues.push(at('ENABLE_CERT_VALIDATION', `must be true ${why}`, 'set ENABLE_CERT_VALIDATION=true'));
  for (const [key, file] of [
    ['SIGNALING_TLS_CERT', c.signalingTlsCert],
    ['SIGNALING_TLS_KEY', c.signalingTlsKey],
  ] as const) {
    if (!file) {
      issues.push(at(key, `is required ${why}`, `set ${key} to the PEM file's path`));
    } else if (PLACEHOLDERS.has(raw[key]!)) {
      issues.push(at(key, 'is still the template placeholder', `set ${key} to the PEM file's path`));
    } else {
      const problem = await unreadable(file);
      if (problem) issues.push(at(key, `${file} ${problem}`, 'point it at an existing, readable PEM file'));
    }
  }
  if (c.turnServers.length === 0) {
    issues.push(
      at(
        'TURN_SERVERS',
        `needs at least one TURN server ${why}`,
        'set TURN_SERVERS=turn:host:3478?transport=udp',
      ),
    );
  }
  for (const key of ['TURN_USERNAME', 'TURN_PASSWORD'] as const) {
    if (raw[key] === '') issues.push(at(key, `is required ${why}`, `set ${key} to the TURN credential`));
    else if (PLACEHOLDERS.has(raw[key]!))
      issues.push(at(key, 'is still the template placeholder', `set ${key} to the real TURN credential`));
  }
  for (const key of ['IF_WITNESS_API_KEY', 'PAGERDUTY_INTEGRATION_KEY'] as const) {
    if (PLACEHOLDERS.has(raw[key]!))
      issues.push(
        at(key, 'is still the template placeholder', `set ${key} to the real key, or leave it empty`),
      );
  }
}

/** What keeps `file` from being read as a regular file, or undefined when it can be. */
export async function unreadable(file: string): Promise<string | undefined> {
  try {
    const st = await fs.stat(file);
    if (!st.isFile()) return 'is not a regular file';
    await fs.access(file, constants.R_OK);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? 'does not exist' : `cannot be read (${code})`;
  }
}

async function exists(file: string): Promise<boolean> {
  return fs.stat(file).then(
    () => true,
    () => false,
  );
}

function displayPath(cwd: string, file: string): string {
  const rel = path.relative(cwd, file);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}

/** Removes user:password@ from a URL-looking string. */
export function redactUrl(value: string): string {
  return JSON.stringify(value.replace(/\/\/[^/@\s]*@/, '//<redacted>@'));
}

function suggest(key: string): string | undefined {
  let best: string | undefined;
  let bestDistance = 4;
  for (const spec of CONFIG_KEYS) {
    const d = distance(key.toUpperCase(), spec.key);
    if (d < bestDistance) {
      best = spec.key;
      bestDistance = d;
    }
  }
  return best;
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}

/**
 * The configuration a launched service must see again when it is restarted: every config key set in
 * `env`, and the env file that was read (IFMESH_CONFIG, absolute), whatever the restarter's cwd.
 */
export function launchEnv(
  env: Record<string, string | undefined>,
  loaded: LoadedConfig,
): Record<string, string> {
  const keys = new Set(CONFIG_KEYS.map((k) => k.key));
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && keys.has(k)) out[k] = v;
  if (loaded.file) out.IFMESH_CONFIG = path.resolve(loaded.file);
  // What --stage implied (production mode) and what --set said hold for the services and agents too,
  // which are given neither (secret values among them are split off into the secrets file by the
  // process and release records).
  for (const [k, s] of Object.entries(loaded.sources))
    if (s.kind === 'stage' || s.kind === 'flag') out[k] = loaded.raw[k]!;
  return out;
}

/**
 * This process's environment without any ifmesh configuration (no config key, no IFMESH_CONFIG): what
 * a process started here inherits under its spec's environment. Its configuration is its spec's
 * alone, as a systemd unit's is its environment file's, so a restart by the supervisor runs on what
 * the first start ran on, and no key of the starter's shell (an admin token exported for a command,
 * another env file) reaches a service or an agent that was not given it.
 */
export function unconfiguredEnv(): NodeJS.ProcessEnv {
  const keys = new Set(CONFIG_KEYS.map((k) => k.key));
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (keys.has(k) || k === 'IFMESH_CONFIG') delete env[k];
  return env;
}
