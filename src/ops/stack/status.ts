import { readdirSync } from 'node:fs';
import path from 'node:path';
import { httpRequest, isUnverifiedCertificate } from '../../clients/http.js';
import { httpUrlOf } from '../../clients/signaling.js';
import type { LoadedConfig } from '../../config/load.js';
import { describeCorrupt } from '../../state/json-file.js';
import { lockHolder, stillHeld } from '../../state/lock.js';
import { type ProcessRole, scanProcesses, type UnreadableRecord } from '../../state/processes.js';
import type { StateDir } from '../../state/state-dir.js';
import { currentReleaseOrBroken } from '../deploy/releases.js';
import { loadFleet } from '../fleet/fleet.js';
import { answers } from '../fleet/health.js';
import { Supervisor } from '../fleet/supervisor.js';
import { scanIncidents } from '../incident/store.js';
import { type InterruptedRun, interruptedRuns } from '../procedure.js';
import { readCanary, runnerAlive } from '../rollout/canary-state.js';
import type { OpContext } from '../shared.js';
import { type SignalingMode, signalingMode } from './signaling-topology.js';
import { httpHealthy } from './stack.js';

export interface ComponentStatus {
  name: string;
  role: ProcessRole;
  /** What started it: `up` or `deploy`. */
  owner: string;
  pid: number | null;
  running: boolean;
  healthy: boolean;
  url: string | null;
  uptime_s: number | null;
  log: string;
  /** Restarts by the supervisor or a procedure (and by systemd itself: the unit's NRestarts). */
  restarts: number;
  /** What runs it: ifmesh's own processes, or a systemd unit. */
  supervisor: 'local' | 'systemd';
  unit: string | null;
  /** Kept running by the supervisor. */
  supervised: boolean;
  /** The supervisor gave up on it: it died too often in a row. */
  crash_loop: { since: string; tries: number } | null;
  /**
   * It answered over TLS with a certificate this command could not verify (no --ca, an expired
   * certificate, a name it does not cover): the error and its fix. `healthy` is false because its
   * answer cannot be trusted, not because it did not answer.
   */
  unverified: { error: string; fix: string } | null;
  /**
   * A signaling instance that runs and answers /health, but not ok: what it says (`degraded`,
   * `cluster_store_unreachable` when the Redis it shares does not answer). Absent otherwise.
   */
  health?: { status: string; reason: string | null };
}

export interface StatusReport {
  state_dir: string;
  /** Anything recorded at all. */
  exists: boolean;
  /** At least one recorded process runs. */
  running: boolean;
  components: ComponentStatus[];
  endpoints: {
    witness: string;
    signaling: string[];
    signaling_http: string[];
    nginx: string | null;
    stun: string[];
    turn: string[];
    prometheus: string | null;
  } | null;
  /**
   * Agents registered and connections reported connected; `unregistered`: agents of the current
   * release no instance has registered (down, blocked, or unable to register), while their process
   * may run and look healthy.
   */
  mesh: { agents: number; connected: number; unregistered: string[] } | null;
  /** "redis": instances share one mesh; "standby": one active, the others hot standbys. */
  signaling_mode: SignalingMode | null;
  /**
   * The fleet's witness when this state did not start it (deploy's is external): whether its /health
   * answers. Informational: the mesh runs without it, its events wait in the spools.
   */
  witness: { url: string; answers: boolean } | null;
  /**
   * Procedures killed before they finished (src/ops/procedure.ts), and a canary whose runner died:
   * what they reached and what converges. Any makes the fleet unhealthy until run again.
   */
  interrupted: InterruptedRun[];
  /** Locks whose holder died (not an incident's hold): the next taker takes them over. */
  stale_locks: { lock: string; pid: number; purpose: string; since: string }[];
  /**
   * Locks held now: by a live process, or an incident's hold (persistent: deploys, canaries and
   * rollbacks wait until it is resolved), or a lock file that no longer parses (`corrupt`: every
   * taker fails on it until it is removed).
   */
  held_locks: {
    lock: string;
    pid: number | null;
    purpose: string;
    since: string | null;
    /** An incident's hold: kept until what `release_hint` says is done, whatever its pid. */
    persistent: boolean;
    release_hint: string | null;
    corrupt: boolean;
  }[];
  /**
   * Process records that no longer parse: left out of `components`, named with what to do. Each
   * makes the fleet unhealthy: its process may run unwatched, and `down` refuses until it is gone.
   */
  unreadable_records: UnreadableRecord[];
  /**
   * Other state files that no longer parse and block a procedure: an incident record (its hold on
   * deploys cannot be resolved by `incident resolve`), `releases/current` (rollback and canary
   * refuse). Each with its fix; each makes the fleet unhealthy.
   */
  unreadable_files: { file: string; error: string; fix: string }[];
  healthy: boolean;
}

/** Journals of interrupted procedures, and the canary when its runner died midway. */
async function interruptedOf(state: StateDir): Promise<InterruptedRun[]> {
  const runs = interruptedRuns(state);
  const c = await readCanary(state);
  if (c?.status === 'progressing' && !(await runnerAlive(state, c)))
    runs.push({
      procedure: 'canary',
      summary: `canary ${c.plan.canary_id}`,
      step: c.step.kind,
      pid: c.pid,
      started_at: c.started_at,
      updated_at: c.updated_at,
      hint: `canary ${c.plan.canary_id}'s runner (pid ${c.pid}) died at step ${c.step.kind}: \`ifmesh canary resume\` goes on, \`ifmesh canary abort\` restores ${c.plan.stable.id}`,
    });
  return runs;
}

/**
 * The state directory's lock files, each read once: held now (a live holder, an incident's
 * persistent hold, or a file that no longer parses) or stale (a holder that is gone).
 */
async function locksOf(
  state: StateDir,
): Promise<{ held: StatusReport['held_locks']; stale: StatusReport['stale_locks'] }> {
  const out = { held: [] as StatusReport['held_locks'], stale: [] as StatusReport['stale_locks'] };
  let names: string[];
  try {
    names = readdirSync(state.root).filter((f) => f.endsWith('.lock'));
  } catch {
    return out;
  }
  for (const f of names.sort()) {
    const name = f.slice(0, -'.lock'.length);
    const lock = state.lock(name);
    const h = await lockHolder(state, name).catch(() => 'corrupt' as const);
    if (h === 'corrupt')
      out.held.push({
        lock,
        pid: null,
        purpose: 'unreadable lock file',
        since: null,
        persistent: false,
        release_hint: null,
        corrupt: true,
      });
    else if (h && stillHeld(h))
      out.held.push({
        lock,
        pid: h.pid,
        purpose: h.purpose,
        since: h.since,
        persistent: h.persistent === true,
        release_hint: h.release_hint ?? null,
        corrupt: false,
      });
    else if (h) out.stale.push({ lock, pid: h.pid, purpose: h.purpose, since: h.since });
  }
  return out;
}

/** What a signaling instance's /health says of itself, when it answers with a status at all. */
async function instanceHealth(
  url: string,
  ctx: Pick<OpContext, 'dispatcher'>,
): Promise<{ status: string; reason: string | null } | undefined> {
  const r = await httpRequest(`${httpUrlOf(url)}/health`, {
    timeoutMs: 1_000,
    dispatcher: ctx.dispatcher,
  }).catch(() => undefined);
  const body = r?.json as { status?: unknown; reason?: unknown } | undefined;
  if (typeof body?.status !== 'string') return undefined;
  return { status: body.status, reason: typeof body.reason === 'string' ? body.reason : null };
}

/** Every process recorded in the state directory (what `up` and `deploy` started alike) and the mesh. */
export async function status(
  state: StateDir,
  loaded: LoadedConfig,
  ctx: Pick<OpContext, 'clock' | 'dispatcher'>,
): Promise<StatusReport> {
  const { records: procs, unreadable: unreadable_records } = scanProcesses(state);
  const current = await currentReleaseOrBroken(state);
  const interrupted = await interruptedOf(state);
  const { held: held_locks, stale: stale_locks } = await locksOf(state);
  const unreadable_files = [
    ...scanIncidents(state).unreadable.map(({ file, error, fix }) => ({ file, error, fix })),
    ...[current.broken].flatMap((b) => (b ? [describeCorrupt(b)] : [])),
  ];
  // An incident's hold whose record no longer parses: `incident resolve` cannot release it.
  for (const l of held_locks) {
    const torn = unreadable_files.find((u) => l.purpose === `incident ${path.basename(u.file, '.json')}`);
    if (l.persistent && torn) l.release_hint = `its record ${torn.file} no longer parses: ${torn.fix}`;
  }
  if (procs.length === 0)
    return {
      state_dir: state.root,
      exists: interrupted.length > 0 || unreadable_records.length > 0 || unreadable_files.length > 0,
      running: false,
      components: [],
      endpoints: null,
      mesh: null,
      signaling_mode: null,
      witness: null,
      interrupted,
      stale_locks,
      held_locks,
      unreadable_records,
      unreadable_files,
      healthy: false,
    };
  const sup = new Supervisor(state, { clock: ctx.clock, owner: 'status' });
  // In the order they were started: witness first, agents last.
  const ordered = [...procs].sort(
    (a, b) => a.started_at.localeCompare(b.started_at) || a.name.localeCompare(b.name),
  );
  const components = await Promise.all(
    ordered.map(async (p): Promise<ComponentStatus> => {
      const pid = sup.pidOf(p) ?? null;
      const unit = p.supervisor === 'systemd' && p.unit ? p.unit : null;
      let unverified: ComponentStatus['unverified'] = null;
      const healthy =
        pid !== null &&
        (await answers(p, ctx.dispatcher, { throwUntrusted: true }).catch((err: unknown) => {
          if (!isUnverifiedCertificate(err)) throw err;
          unverified = { error: err.message, fix: err.hint ?? '' };
          return false;
        }));
      // It runs but is not ok: its own /health says why (Redis gone reads "degraded"), where the
      // drill's status said no instance answered at all.
      const said =
        pid !== null && !healthy && !unverified && p.role === 'signaling' && p.url
          ? await instanceHealth(p.url, ctx)
          : undefined;
      return {
        name: p.name,
        role: p.role,
        owner: p.owner,
        pid,
        running: pid !== null,
        healthy,
        ...(said ? { health: said } : {}),
        url: p.url ?? null,
        uptime_s: pid !== null ? Math.round((ctx.clock.now() - Date.parse(p.started_at)) / 1000) : null,
        log: sup.logFile(p.name),
        restarts: sup.restartCount(p),
        supervisor: unit ? 'systemd' : 'local',
        unit,
        supervised: p.supervised === true,
        crash_loop: p.crash_loop ? { since: p.crash_loop.since, tries: p.crash_loop.tries } : null,
        unverified,
      };
    }),
  );
  const signaling = components.find((c) => c.role === 'signaling' && c.healthy && c.url);
  let mesh: StatusReport['mesh'] = null;
  const instances = components.filter((c) => c.role === 'signaling').length;
  // Until an instance answers, the records say whether the instances share Redis: up and deploy give
  // every instance SIGNALING_CLUSTER_URL then (a secret, so only its name is recorded).
  const recordedRedis = procs.some(
    (p) =>
      p.role === 'signaling' &&
      (p.spec?.secret_env.includes('SIGNALING_CLUSTER_URL') ||
        p.spec?.env.SIGNALING_CLUSTER_URL !== undefined),
  );
  let mode: SignalingMode | null =
    instances && components.some((c) => c.running) ? signalingMode(instances, recordedRedis) : null;
  if (signaling?.url) {
    const get = (p: string) =>
      httpRequest(`${httpUrlOf(signaling.url!)}${p}`, { timeoutMs: 1_000, dispatcher: ctx.dispatcher }).catch(
        () => undefined,
      );
    const [agents, conns, health] = await Promise.all([get('/agents'), get('/connections'), get('/health')]);
    // The instance says whether it shares the mesh through Redis (a configured one counts too).
    mode = signalingMode(instances, (health?.json as { cluster?: string })?.cluster === 'redis');
    const listed = (agents?.json as { agents?: { agent_id?: string }[] })?.agents;
    // Every healthy instance's: without Redis a standby holds none of the agents its active one does.
    const others = await Promise.all(
      components
        .filter((c) => c.role === 'signaling' && c.healthy && c.url && c !== signaling)
        .map((c) =>
          httpRequest(`${httpUrlOf(c.url!)}/agents`, { timeoutMs: 1_000, dispatcher: ctx.dispatcher }).catch(
            () => undefined,
          ),
        ),
    );
    const registered = new Set(
      [listed, ...others.map((o) => (o?.json as { agents?: { agent_id?: string }[] })?.agents)].flatMap((l) =>
        (l ?? []).map((a) => a.agent_id),
      ),
    );
    mesh = {
      agents: (listed ?? []).length,
      connected: ((conns?.json as { connections?: { state: string }[] })?.connections ?? []).filter(
        (c) => c.state === 'connected',
      ).length,
      // Only when /agents answered: an instance that did not is a component problem, shown above.
      unregistered: listed ? (current.release?.agents ?? []).filter((id) => !registered.has(id)).sort() : [],
    };
  }
  const fleet = loadFleet(state, loaded);
  const running = components.some((c) => c.running);
  const external = running && fleet.witness.url && !components.some((c) => c.role === 'witness');
  const witness = external
    ? { url: fleet.witness.url, answers: await httpHealthy(fleet.witness.url, ctx.dispatcher) }
    : null;
  return {
    state_dir: state.root,
    exists: true,
    running,
    components,
    endpoints: running
      ? {
          witness: fleet.witness.url,
          signaling: fleet.signaling.map((x) => x.url),
          signaling_http: fleet.signaling.map((x) => x.http),
          nginx: fleet.front_door?.url ?? null,
          stun: fleet.stun,
          turn: fleet.turn,
          prometheus: procs.find((p) => p.role === 'prometheus')?.url ?? null,
        }
      : null,
    mesh,
    signaling_mode: mode,
    witness,
    interrupted,
    stale_locks,
    held_locks,
    unreadable_records,
    unreadable_files,
    // A corrupt lock file fails every deploy, canary and rollback until someone removes it.
    healthy:
      components.length > 0 &&
      components.every((c) => c.healthy) &&
      interrupted.length === 0 &&
      !held_locks.some((l) => l.corrupt) &&
      unreadable_records.length === 0 &&
      unreadable_files.length === 0,
  };
}
