// The secrets `up` and `deploy` generate for the services they start (Redis's password, the cluster
// secret, the witness's admin key), kept in the state's secrets file (src/state/secrets.ts) under
// the environment key a service reads them from. The same value comes back on every run and on a
// restart from a launch spec, and none of them is ever on a command line: services get them through
// their environment (the record names the key, the secrets file holds the value) or a 0600 file.
import { randomBytes } from 'node:crypto';
import { redisUrl, writeRedisConfig } from '../../exec/redis.js';
import { writeTurnserverConfig } from '../../exec/turnserver.js';
import { secretEnv, storeSecretEnv } from '../../state/secrets.js';
import type { StateDir } from '../../state/state-dir.js';

/** The value of secret `key` in the state's secrets file, generated (random) the first time. */
export function generatedSecret(state: StateDir, key: string, bytes = 24): string {
  const held = secretEnv(state, [key])[key];
  if (held) return held;
  const value = randomBytes(bytes).toString('base64url');
  storeSecretEnv(state, { [key]: value });
  return value;
}

export interface LocalRedisAuth {
  /** redis://:PASSWORD@127.0.0.1:PORT: what instances get in SIGNALING_CLUSTER_URL. */
  url: string;
  /** The same without the password: what a process record and a plan show. */
  plain: string;
  /** The 0600 file redis-server reads its password from. */
  configFile: string;
}

/**
 * The password of the local redis-server `name` (made once), written to its 0600 config file in the
 * state directory, and the URLs to reach it. Rewritten on every call with the same content, so a
 * state directory restored without the file gets it back before Redis starts.
 */
export function localRedisAuth(state: StateDir, name: string, port: number): LocalRedisAuth {
  const key = `${name.toUpperCase().replace(/[^A-Z0-9]+/g, '_')}_PASSWORD`;
  const password = generatedSecret(state, key);
  const configFile = state.redisConf(name);
  writeRedisConfig(configFile, password);
  return { url: redisUrl('127.0.0.1', port, password), plain: redisUrl('127.0.0.1', port), configFile };
}

/** coturn's 0600 config file with the stack's TURN credential (coturn reads it with `-c`). */
export function localTurnConfig(state: StateDir, name: string, user: string, password: string): string {
  const file = state.turnConf(name);
  writeTurnserverConfig(file, { user, password });
  return file;
}

/** The secrets-file key of the local PostgreSQL superuser's password (`up --witness-db postgres`). */
export const POSTGRES_PASSWORD_KEY = 'POSTGRES_PASSWORD';

/** The local PostgreSQL superuser's password, made once (random) and kept in the secrets file. */
export const localPostgresPassword = (state: StateDir): string =>
  generatedSecret(state, POSTGRES_PASSWORD_KEY);
