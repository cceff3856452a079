// ifmesh preflight: the runbook's pre-flight-check.sh as a checklist whose checks run concurrently,
// each bounded by its own timeout, so the slowest check bounds the whole run.
import { type LoadedConfig, loadConfig } from '../../config/load.js';
import { ConfigError } from '../../errors.js';
import { SystemdRunner } from '../../exec/systemctl.js';
import { packageRoot } from '../../paths.js';
import type { StateDir } from '../../state/state-dir.js';
import { formatDuration } from '../../ui/units.js';
import { sleepWhileResponsive } from '../../util/clock.js';
import { resolveSystemdSettings, runsUnderSystemd } from '../fleet/systemd.js';
import type { OpContext } from '../shared.js';
import { buildChecks } from './checks.js';
import { checkProduction } from './production.js';
import { checkServiceUser, filesUnitsRead } from './service-user.js';
import type { CheckStatus, PreflightCheck, PreflightEnv } from './types.js';

export type { CheckStatus, PreflightCheck, PreflightEnv } from './types.js';

export interface PreflightResult {
  name: string;
  status: CheckStatus;
  detail: string;
  hint?: string | undefined;
  duration_ms: number;
}

export interface PreflightReport {
  ok: boolean;
  verdict: string;
  counts: Record<CheckStatus, number>;
  checks: PreflightResult[];
}

export interface PreflightOptions {
  configFile?: string | undefined;
  set?: Record<string, string> | undefined;
  /** --stage: its env file, and production mode for production. */
  stage?: string | undefined;
  state: StateDir;
  /** The installation to check; the running package by default. */
  root?: string;
  nodeVersion?: string;
  /** `--supervisor`: with `systemd` (or a state whose services run as units), the service user is checked. */
  supervisor?: string | undefined;
  /** `--service-user`: else the one recorded at install, else `ifmesh`. */
  serviceUser?: string | undefined;
  onStart?: (name: string) => void;
  onCheck?: (result: PreflightResult) => void;
}

async function runOne(check: PreflightCheck, env: PreflightEnv): Promise<PreflightResult> {
  const { clock } = env.ctx;
  const t0 = clock.now();
  const stop = new AbortController();
  // The budget is the check's, not the other checks': time the event loop spent on another check
  // (dependencies imports every package synchronously, for seconds on a loaded host) is not held
  // against a check that was waiting for its turn to read a file.
  const timeout = sleepWhileResponsive(clock, check.timeoutMs, stop.signal)
    .then(() => ({
      status: 'fail' as const,
      detail: `no result within ${formatDuration(check.timeoutMs)}`,
      hint: 'the check hung: look at what it talks to',
    }))
    .catch(() => new Promise<never>(() => {}));
  try {
    const outcome = await Promise.race([
      check.run(env).catch((err: Error) => ({
        status: 'fail' as const,
        detail: `check crashed: ${err.message}`,
        hint: 'report this as a bug in ifmesh',
      })),
      timeout,
    ]);
    return { name: check.name, ...outcome, duration_ms: clock.now() - t0 };
  } finally {
    stop.abort();
  }
}

export async function runPreflight(ctx: OpContext, o: PreflightOptions): Promise<PreflightReport> {
  let loaded: LoadedConfig | undefined;
  let configError: ConfigError | undefined;
  try {
    // The loader's production rules are reported, not thrown: they are preflight lines of their own.
    loaded = await loadConfig({
      cwd: ctx.cwd,
      env: ctx.env,
      file: o.configFile,
      flags: o.set,
      stage: o.stage,
      productionRules: 'report',
    });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    configError = err;
  }
  const env: PreflightEnv = {
    ctx,
    loaded,
    configError,
    production: loaded
      ? await checkProduction({
          config: loaded.config,
          envFile: loaded.file,
          configIssues: loaded.productionIssues,
        })
      : undefined,
    state: o.state,
    root: o.root ?? packageRoot(),
    nodeVersion: o.nodeVersion ?? process.versions.node,
  };
  return runChecks([...buildChecks(env), ...serviceUserChecks(env, o)], env, o);
}

/** Under systemd: whether the service user can read what the units read (service-user.ts). */
function serviceUserChecks(env: PreflightEnv, o: PreflightOptions): PreflightCheck[] {
  if (o.supervisor !== 'systemd' && !(o.supervisor === undefined && runsUnderSystemd(o.state))) return [];
  const settings = resolveSystemdSettings(o.state, { user: o.serviceUser, env: env.ctx.env });
  const c = env.loaded?.config;
  return [
    {
      name: 'service user',
      timeoutMs: 10_000,
      run: async () =>
        checkServiceUser(
          new SystemdRunner(settings.run),
          settings.user,
          await filesUnitsRead({
            cwd: env.ctx.cwd,
            state: o.state,
            envFile: env.loaded?.file,
            tls: [c?.signalingTlsCert, c?.signalingTlsKey, c?.caFile],
          }),
        ),
    },
  ];
}

/** Runs `checks` concurrently, each bounded by its timeout on the context's clock. */
export async function runChecks(
  checks: PreflightCheck[],
  env: PreflightEnv,
  o: Pick<PreflightOptions, 'onStart' | 'onCheck'> = {},
): Promise<PreflightReport> {
  for (const c of checks) o.onStart?.(c.name);
  const results = await Promise.all(
    checks.map((c) =>
      runOne(c, env).then((r) => {
        o.onCheck?.(r);
        return r;
      }),
    ),
  );
  const counts = { ok: 0, warn: 0, fail: 0 };
  for (const r of results) counts[r.status] += 1;
  const verdict = counts.fail
    ? `${counts.fail} of ${results.length} checks failed: do not deploy`
    : `all ${results.length} checks passed${counts.warn ? ` (${counts.warn} warning${counts.warn > 1 ? 's' : ''})` : ''}: ready to deploy`;
  return { ok: counts.fail === 0, verdict, counts, checks: results };
}
