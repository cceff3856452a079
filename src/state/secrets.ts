// The secrets file of a state directory (0600, written whole): the local stack's generated
// credentials, and the secret environment values of recorded processes. A process record names the
// secret keys it needs (src/state/processes.ts); their values live only here, so a restart from the
// record gets them back without any secret sitting in a record, a log or a command line.
import { randomBytes } from 'node:crypto';
import { SECRET_KEYS } from '../config/schema.js';
import { readStateJson, writeFileWhole, writeStateJson } from './json-file.js';
import type { StateDir } from './state-dir.js';

/** The local stack's credentials (`up` makes them); a deploy-made fleet may have only `env`. */
export interface StateSecrets {
  witness_api_key?: string;
  admin_token?: string;
  turn_password?: string;
  /** Secret environment values of recorded processes, by key (IF_WITNESS_API_KEY, TURN_PASSWORD, …). */
  env?: Record<string, string>;
}

/** Environment keys whose values are secrets: kept in the secrets file, never in a record. */
export function isSecretEnvKey(key: string): boolean {
  // Every key the config schema marks secret (IF_WITNESS_ADMIN_KEY, SMTP_URL, …), and by name the
  // rest. Cluster and database URLs may carry a password.
  return SECRET_KEYS.has(key) || /(PASSWORD|PASS|TOKEN|API_KEY|SECRET|CLUSTER_URL|DB_URL)$/.test(key);
}

export function readSecrets(state: StateDir): StateSecrets | undefined {
  return readStateJson<StateSecrets>(
    state.secrets,
    (v) => typeof v === 'object' && v !== null && !Array.isArray(v),
    'restore it from a backup, or remove it and run `ifmesh up` to make new secrets',
  );
}

function writeSecrets(state: StateDir, s: StateSecrets): void {
  writeStateJson(state.secrets, s, 0o600);
}

export type StackSecrets = Required<Omit<StateSecrets, 'env'>> & Pick<StateSecrets, 'env'>;

/** The local stack's secrets, made once (random) and kept 0600, with the admin token beside them. */
export function ensureSecrets(state: StateDir): StackSecrets {
  const existing = readSecrets(state);
  if (existing?.witness_api_key && existing.admin_token && existing.turn_password)
    return existing as StackSecrets;
  const s: StackSecrets = {
    witness_api_key: randomBytes(24).toString('base64url'),
    admin_token: randomBytes(24).toString('base64url'),
    turn_password: randomBytes(12).toString('base64url'),
    ...existing,
  };
  writeSecrets(state, s);
  writeFileWhole(state.adminToken, `${s.admin_token}\n`, 0o600);
  return s;
}

/** Keeps secret environment values for restarts (making no stack credentials). */
export function storeSecretEnv(state: StateDir, env: Record<string, string>): void {
  if (Object.keys(env).length === 0) return;
  const s = readSecrets(state) ?? {};
  const merged = { ...s.env, ...env };
  if (JSON.stringify(merged) !== JSON.stringify(s.env ?? {})) writeSecrets(state, { ...s, env: merged });
}

/** The stored values of `keys` (those never stored are left out). */
export function secretEnv(state: StateDir, keys: string[]): Record<string, string> {
  const env = readSecrets(state)?.env ?? {};
  return Object.fromEntries(keys.filter((k) => env[k] !== undefined).map((k) => [k, env[k]!]));
}
