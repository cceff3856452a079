import type { LoadedConfig } from '../../config/load.js';
import type { ConfigError } from '../../errors.js';
import type { StateDir } from '../../state/state-dir.js';
import type { OpContext } from '../shared.js';
import type { ProductionFinding } from './production.js';

/** ✓ ok, ! warning (exit 0), ✗ failure (exit 1). */
export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface CheckOutcome {
  status: CheckStatus;
  detail: string;
  /** What to do about a warning or failure. */
  hint?: string | undefined;
}

export interface PreflightEnv {
  ctx: OpContext;
  /** The effective configuration, or undefined when it does not validate (see configError). */
  loaded: LoadedConfig | undefined;
  configError: ConfigError | undefined;
  /** Every production rule's finding (production.ts), or undefined without a configuration. */
  production: ProductionFinding[] | undefined;
  state: StateDir;
  /** The installation checked (package.json, node_modules, dist/): the running package by default. */
  root: string;
  nodeVersion: string;
}

/** One line of the checklist: data, so the list can grow without touching the runner. */
export interface PreflightCheck {
  name: string;
  timeoutMs: number;
  run(env: PreflightEnv): Promise<CheckOutcome>;
}

export const ok = (detail: string): CheckOutcome => ({ status: 'ok', detail });
export const warn = (detail: string, hint: string): CheckOutcome => ({ status: 'warn', detail, hint });
export const fail = (detail: string, hint: string): CheckOutcome => ({ status: 'fail', detail, hint });

export const NO_CONFIG = warn(
  'not checked: the configuration does not validate',
  'fix the configuration first',
);
