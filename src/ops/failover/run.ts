// A failover scenario from plan to verdict, as `ifmesh failover <scenario>` and `failover validate`
// run it: apply the plan under the deploy lock, then validate the recovery (seven checks, one of them
// a signed message exchange between temporary agents).
import { Agent } from 'undici';
import type { LoadedConfig } from '../../config/load.js';
import { UnauthorizedError } from '../../errors.js';
import type { StateDir } from '../../state/state-dir.js';
import type { Progress } from '../../ui/progress.js';
import { messageExchange } from '../agent/exchange.js';
import { iceServers } from '../agent/ice.js';
import { operator } from '../deploy/releases.js';
import type { Fleet } from '../fleet/fleet.js';
import type { OpContext } from '../shared.js';
import { applyFailover, type FailoverPlan, type FailoverReport } from './scenarios.js';
import { CHECK_TITLES, type Scenario, type ValidationReport, validateRecovery } from './validate.js';

/** The port of an http(s):// or ws(s):// URL. */
const portOf = (u: string) => /:(\d+)(?:\/|$)/.exec(u)?.[1];

/** The fleet a scenario acts on: its signaling URLs (ws and http) and its witness. */
export function failoverSession({
  config: loaded,
  state,
  fleet,
}: {
  config: LoadedConfig;
  state: StateDir;
  fleet: Fleet;
}) {
  return {
    loaded,
    state,
    fleet,
    urls: fleet.signaling.map((x) => x.url),
    http: fleet.signaling.map((x) => x.http),
    witness: { url: fleet.witness.url, apiKey: fleet.witness.api_key, state },
  };
}
export type FailoverSession = ReturnType<typeof failoverSession>;

/** The message delivery check: temporary agents, pings per pair, the RTT budget, how they connect. */
export interface DeliveryCheck {
  agents: number;
  messages: number;
  maxRttP95Ms: number;
  stun: string | undefined;
  loopback: boolean;
  /** A self-signed wss:// instance's HTTP API is read as well as its WebSocket. */
  insecure: boolean;
}

export async function validateFailover(
  s: FailoverSession,
  check: DeliveryCheck,
  failoverId: string,
  scenario: Scenario,
  progress: Progress,
  ctx: OpContext,
  recovery?: { recovery_ms: number | null },
  /** An instance the run left down on purpose (promote-backup's failed one): not read. */
  down?: string,
): Promise<ValidationReport> {
  if (!s.witness.apiKey)
    throw new UnauthorizedError(
      'no witness API key',
      'set IF_WITNESS_API_KEY (validation reads the witness)',
    );
  return validateRecovery(
    {
      failoverId,
      scenario,
      signalingHttp: down ? s.http.filter((h) => portOf(h) !== portOf(down)) : s.http,
      witness: s.witness,
      recovery,
      maxRttP95Ms: check.maxRttP95Ms,
      exchange: () =>
        messageExchange({
          clock: ctx.clock,
          signalingUrls: s.urls,
          iceServers: iceServers(s.loaded.config, { stun: check.stun ?? s.fleet.stun[0], turn: '' }),
          agents: check.agents,
          messages: check.messages,
          loopbackOnly: check.loopback,
          formTimeoutMs: 20_000,
          rejectUnauthorized: !check.insecure,
          ca: ctx.tls?.ca,
          dispatcher: ctx.dispatcher,
          witness: s.witness,
        }),
      onCheck: (c) => progress.step(CHECK_TITLES[c.name], c.passed ? 'ok' : 'fail', c.detail),
    },
    check.insecure ? { ...ctx, dispatcher: new Agent({ connect: { rejectUnauthorized: false } }) } : ctx,
  );
}

export interface FailoverDoc {
  plan: FailoverPlan;
  dry_run: false;
  report: FailoverReport;
  validation: ValidationReport;
  ok: boolean;
}

/** Applies the plan under the deploy lock and validates the recovery; refuses without the tokens it needs. */
export async function applyAndValidate(
  p: FailoverPlan,
  s: FailoverSession,
  check: DeliveryCheck,
  timeoutMs: number,
  ctx: OpContext,
  openProgress: () => Promise<Progress>,
): Promise<FailoverDoc> {
  const adminToken = s.fleet.admin_token;
  // B restarts processes and D files: only the admin API's scenarios need the token.
  if (!adminToken && (p.turn || p.partition || p.keys))
    throw new UnauthorizedError(
      'no signaling admin token',
      `set SIGNALING_ADMIN_TOKEN, or run against the local stack (${s.state.adminToken})`,
    );
  if (!s.witness.apiKey)
    throw new UnauthorizedError(
      'no witness API key',
      'set IF_WITNESS_API_KEY: every failover step is logged',
    );
  const progress = await openProgress();
  try {
    const report = await applyFailover(
      p,
      {
        state: s.state,
        adminToken: adminToken ?? '',
        witness: s.witness,
        timeoutMs,
        turnCredentials: s.fleet.turn_credentials,
        operator: operator(ctx.env),
        onStep: (l) => progress.info(l),
      },
      ctx,
    );
    const validation = await validateFailover(
      s,
      check,
      p.failover_id,
      p.scenario,
      progress,
      ctx,
      report.recovery,
      p.promote_backup?.failed,
    );
    await progress.close();
    return { plan: p, dry_run: false, report, validation, ok: report.ok && validation.passed };
  } finally {
    await progress.close();
  }
}
