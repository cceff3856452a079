// ifmesh verify: the runbook's verify-deployment.sh. Four steps in order — signaling health, at
// least two agents registered, peer connections established, signed message exchange — each retried
// on the context's clock, each reported and logged to the witness under one trace id.
import { randomUUID } from 'node:crypto';
import { isUnverifiedCertificate } from '../../clients/http.js';
import { SignalingClient } from '../../clients/signaling.js';
import { ExitCode, type ExitCodeValue, IfmeshError } from '../../errors.js';
import type { WitnessEvent } from '../../protocol/witness.js';
import { formatMs } from '../../ui/units.js';
import type { ExchangeOptions, ExchangeReport } from '../agent/exchange.js';
import { mergeAgents, mergeConnections } from '../fleet-views.js';
import type { OpContext } from '../shared.js';

export type StepName =
  | 'signaling_health'
  | 'agents_registered'
  | 'connections_established'
  | 'message_exchange';
export type StepStatus = 'ok' | 'warn' | 'fail' | 'skipped';

export interface VerifyStep {
  name: StepName;
  status: StepStatus;
  detail: string;
  attempts: number;
  /** The measured values behind the verdict. */
  data?: Record<string, unknown> | undefined;
}

export interface VerifyReport {
  ok: boolean;
  /** 0 passed, 1 a step failed, 3 signaling unreachable (README's table). */
  exit_code: ExitCodeValue;
  deployment_id: string | undefined;
  trace_id: string;
  steps: VerifyStep[];
}

export interface VerifyOptions {
  /** Every signaling instance (http(s):// or ws(s)://); agents and connections are merged, each once. */
  signalingHttp: string[];
  deploymentId?: string | undefined;
  /** Attempts per step, and the wait between them. */
  retries: number;
  intervalMs: number;
  /** The fourth step; given by the caller so it can set ICE servers, agents and messages. */
  exchange: (events: ExchangeOptions['events']) => Promise<ExchangeReport>;
  witness?: { log(e: WitnessEvent): void } | undefined;
  /**
   * The agents the fleet's current release deployed (from its state): each must be registered, not
   * just any two. Absent (no release recorded): the runbook's bar of at least two agents alone.
   */
  deployedAgents?: { release: string; agents: string[] } | undefined;
  onStep?: (step: VerifyStep | { name: StepName; status: 'running' }) => void;
  traceId?: string;
}

export const STEP_TITLES: Record<StepName, string> = {
  signaling_health: 'signaling server healthy',
  agents_registered: 'agent mesh formed (at least 2 agents)',
  connections_established: 'peer connections established',
  message_exchange: 'signed IFMessage exchange',
};

interface Connection {
  agent_id: string;
  peer_id: string;
  state: string;
}
interface Agent {
  agent_id: string;
  mesh?: string;
}

/** Pairs expected in a full mesh: n·(n−1)/2 within each mesh (agents see only their own mesh). */
export function expectedPairs(agents: Agent[]): number {
  const per = new Map<string, number>();
  for (const a of agents) per.set(a.mesh ?? 'default', (per.get(a.mesh ?? 'default') ?? 0) + 1);
  let n = 0;
  for (const k of per.values()) n += (k * (k - 1)) / 2;
  return n;
}

/**
 * Distinct agent pairs with a connected report (both ends usually report the same pair), between
 * agents registered now and in one mesh: a report about a peer that has gone (a killed agent, whose
 * peer has not yet timed the link out) is not a connection, and cannot make more pairs than expected.
 */
export function connectedPairs(connections: Connection[], registered: Agent[]): number {
  const mesh = new Map(registered.map((a) => [a.agent_id, a.mesh ?? 'default']));
  const pairs = new Set<string>();
  for (const c of connections) {
    if (c.state !== 'connected') continue;
    const [m1, m2] = [mesh.get(c.agent_id), mesh.get(c.peer_id)];
    if (m1 === undefined || m1 !== m2) continue;
    pairs.add([c.agent_id, c.peer_id].sort().join('\u0000'));
  }
  return pairs.size;
}

export async function verifyDeployment(ctx: OpContext, o: VerifyOptions): Promise<VerifyReport> {
  const traceId = o.traceId ?? randomUUID();
  const clients = o.signalingHttp.map(
    (u) => new SignalingClient(u, { timeoutMs: 5_000, dispatcher: ctx.dispatcher, signal: ctx.signal }),
  );
  const bases = clients.map((c) => c.url);
  const steps: VerifyStep[] = [];
  let unreachable = false;
  const tags = { trace_id: traceId, ...(o.deploymentId ? { deployment_id: o.deploymentId } : {}) };
  const logStep = (step: VerifyStep) =>
    o.witness?.log({
      event: 'deployment_verification_step',
      ...tags,
      metadata: {
        step: step.name,
        status: step.status,
        detail: step.detail,
        attempts: step.attempts,
        ...step.data,
      },
    });

  /** Tries `attempt` until it says done or the retries run out; the last outcome stands. */
  const retry = async (
    name: StepName,
    attempt: () => Promise<{ done: boolean; step: Omit<VerifyStep, 'name' | 'attempts'> }>,
  ): Promise<VerifyStep> => {
    o.onStep?.({ name, status: 'running' });
    let attempts = 0;
    let last: Omit<VerifyStep, 'name' | 'attempts'> = { status: 'fail', detail: 'not tried' };
    // Counted attempts, as the runbook's MAX_RETRIES, rather than waitFor's deadline: a slow attempt
    // must not eat the retries the operator asked for.
    for (;;) {
      attempts += 1;
      const r = await attempt();
      last = r.step;
      if (r.done || attempts >= o.retries) break;
      await ctx.clock.sleep(o.intervalMs, ctx.signal);
    }
    const step: VerifyStep = { name, attempts, ...last };
    steps.push(step);
    o.onStep?.(step);
    logStep(step);
    return step;
  };

  /**
   * An unreachable server, an error answer or a malformed one is a reason to retry, not an error,
   * until the last attempt.
   */
  const reach = async <T>(f: () => Promise<T>): Promise<T | IfmeshError> => {
    try {
      return await f();
    } catch (err) {
      if (err instanceof IfmeshError) return err;
      throw err;
    }
  };

  const health = await retry('signaling_health', async () => {
    const answers = await Promise.all(clients.map((c) => reach(() => c.health())));
    const bad: string[] = [];
    let fix: string | undefined;
    unreachable = false;
    answers.forEach((r, i) => {
      if (r instanceof IfmeshError) {
        if (r.exitCode === ExitCode.unreachable) unreachable = true;
        if (isUnverifiedCertificate(r)) fix = r.hint;
        bad.push(r.message);
        return;
      }
      if (r.status !== 'ok')
        bad.push(`${bases[i]}/health answered ${r.status}${r.reason ? ` (${r.reason})` : ''}`);
    });
    // A certificate the CA does not vouch for stays refused: retrying only delays the answer.
    return bad.length
      ? {
          done: fix !== undefined,
          step: { status: 'fail', detail: `${bad.join('; ')}${fix ? ` — ${fix}` : ''}` },
        }
      : { done: true, step: { status: 'ok', detail: `${bases.map((b) => `${b}/health`).join(', ')} ok` } };
  });

  /** Every instance's answer, or the first failure. */
  const gather = async <T>(read: (c: SignalingClient) => Promise<T>): Promise<T[] | IfmeshError> => {
    const answers = await Promise.all(clients.map((c) => reach(() => read(c))));
    const out: T[] = [];
    for (const r of answers) {
      if (r instanceof IfmeshError) return r;
      out.push(r);
    }
    return out;
  };

  let agents: Agent[] = [];
  if (health.status === 'ok') {
    await retry('agents_registered', async () => {
      const r = await gather((c) => c.agents());
      if (r instanceof IfmeshError) return { done: false, step: { status: 'fail', detail: r.message } };
      agents = mergeAgents(r);
      const data = { agents: agents.length };
      const ids = new Set(agents.map((a) => a.agent_id));
      const missing = o.deployedAgents?.agents.filter((id) => !ids.has(id)) ?? [];
      if (missing.length > 0)
        return {
          done: false,
          step: {
            status: 'fail',
            detail: `${missing.join(', ')} of release ${o.deployedAgents!.release} not registered (${agents.length} agents registered) — see \`ifmesh status\` and \`ifmesh logs deploy-agent-${missing[0]}\``,
            data: { ...data, missing },
          },
        };
      return agents.length >= 2
        ? { done: true, step: { status: 'ok', detail: `${agents.length} agents registered`, data } }
        : {
            done: false,
            step: {
              status: 'fail',
              detail: `insufficient agents registered: ${agents.length} (at least 2)`,
              data,
            },
          };
    });
  }

  if (steps.at(-1)?.status === 'ok' && steps.length === 2) {
    await retry('connections_established', async () => {
      const [a, c] = await Promise.all([gather((x) => x.agents()), gather((x) => x.connections())]);
      if (a instanceof IfmeshError) return { done: false, step: { status: 'fail', detail: a.message } };
      if (c instanceof IfmeshError) return { done: false, step: { status: 'fail', detail: c.message } };
      agents = mergeAgents(a);
      const expected = expectedPairs(agents);
      const connected = connectedPairs(mergeConnections(c), agents);
      const data = { connected, expected, agents: agents.length };
      const text = `${connected}/${expected} agent pairs connected`;
      if (connected >= expected) return { done: true, step: { status: 'ok', detail: text, data } };
      // The runbook's bar: at least half of the pairs; fewer than all is partial connectivity.
      if (connected * 2 >= expected)
        return { done: true, step: { status: 'warn', detail: `partial connectivity: ${text}`, data } };
      return {
        done: false,
        step: { status: 'fail', detail: `too few connections: ${text} (at least half needed)`, data },
      };
    });
  }

  const last = steps.at(-1)!;
  if (steps.length === 3 && last.status !== 'fail') {
    o.onStep?.({ name: 'message_exchange', status: 'running' });
    const events = o.witness
      ? {
          log: (e: WitnessEvent) => o.witness!.log({ ...e, ...tags }),
        }
      : undefined;
    let step: VerifyStep;
    try {
      const r = await o.exchange(events);
      const detail = `${r.pongs_received}/${r.pings_sent} signed pings answered over ${r.pairs} pairs, RTT p95 ${formatMs(r.rtt_ms.p95)}, ${r.signature_failures} signature failures`;
      step = {
        name: 'message_exchange',
        status: r.ok ? 'ok' : 'fail',
        detail: r.ok ? detail : `${r.failures.join('; ') || 'failed'} (${detail})`,
        attempts: 1,
        data: {
          delivery_ratio: r.delivery_ratio,
          rtt_p95_ms: r.rtt_ms.p95,
          signature_failures: r.signature_failures,
        },
      };
    } catch (err) {
      step = { name: 'message_exchange', status: 'fail', detail: (err as Error).message, attempts: 1 };
    }
    steps.push(step);
    o.onStep?.(step);
    logStep(step);
  }

  for (const name of Object.keys(STEP_TITLES) as StepName[])
    if (!steps.some((s) => s.name === name))
      steps.push({ name, status: 'skipped', detail: 'not run: an earlier step failed', attempts: 0 });

  const failed = steps.some((s) => s.status === 'fail');
  const exit_code = !failed
    ? ExitCode.ok
    : unreachable && health.status === 'fail'
      ? ExitCode.unreachable
      : ExitCode.checkFailed;
  o.witness?.log({
    event: 'deployment_verification_completed',
    ...tags,
    metadata: { ok: !failed, exit_code, steps: steps.map((s) => `${s.name}:${s.status}`) },
  });
  return { ok: !failed, exit_code, deployment_id: o.deploymentId, trace_id: traceId, steps };
}
