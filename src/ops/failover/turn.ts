// Scenario A's first two steps, as the guide's manual-turn-recovery.sh orders them: the replacement
// is tested with a real TURN Allocate before anything is switched (a dead or refusing one stops the
// failover with its own error and exit code), and the new TURN_SERVERS is written to the env file the
// configuration came from, so the next restart of a signaling instance does not bring the failed
// server back.
import { StunError, type TurnCredentials, turnAllocate } from '../../clients/stun.js';
import { setEnvFileKey } from '../../config/env-file-update.js';
import { parseIceUrl } from '../../config/ice-url.js';
import {
  CheckFailedError,
  type IfmeshError,
  UnauthorizedError,
  UnreachableError,
  UsageError,
} from '../../errors.js';
import { writeStateJson } from '../../state/json-file.js';
import { readProcess, updateProcess } from '../../state/processes.js';
import type { StateDir } from '../../state/state-dir.js';
import type { Clock } from '../../util/clock.js';
import { scanReleases } from '../deploy/releases.js';

/** How long the replacement has to answer the Allocate (the guide's `timeout 5 stunclient`). */
export const PROBE_TIMEOUT_MS = 5_000;

/** The part of the plan that decides the probe, checked before anything runs. */
export function probeTarget(url: string): { host: string; port: number } {
  const u = parseIceUrl(url, ['turn', 'turns']);
  if (typeof u === 'string') throw new UsageError(`--replacement ${url}: ${u}`);
  if (u.scheme === 'turns' || u.transport === 'tcp')
    throw new UsageError(
      `${url} cannot be probed: ifmesh tests TURN over UDP only`,
      'probe it by hand (turnutils_uclient), then pass --no-probe',
    );
  return { host: u.host, port: u.port };
}

export interface ProbeOutcome {
  ok: boolean;
  detail: string;
  relayed?: string;
  rtt_ms?: number;
  /** Why the replacement is refused, as the error the failover stops with. */
  error?: IfmeshError;
}

export async function probeReplacement(
  url: string,
  cred: TurnCredentials,
  clock: Clock,
): Promise<ProbeOutcome> {
  try {
    const r = await turnAllocate(probeTarget(url), cred, { timeoutMs: PROBE_TIMEOUT_MS, clock });
    return {
      ok: true,
      detail: `${url} allocated a relay (${r.relayed}, realm ${r.realm}) in ${Math.round(r.rttMs)} ms, released`,
      relayed: r.relayed,
      rtt_ms: r.rttMs,
    };
  } catch (err) {
    const code = err instanceof StunError ? err.code : undefined;
    const why = (err as Error).message;
    const keep = 'nothing was switched: TURN_SERVERS and the agents are as they were';
    const error =
      code === undefined
        ? new UnreachableError(
            `replacement TURN server ${url} is not responding: ${why}`,
            `${keep}; check it runs and UDP reaches it, or name another --replacement`,
            'turn_replacement_unreachable',
          )
        : code === 401 || code === 441
          ? new UnauthorizedError(
              `replacement TURN server ${url} refuses TURN_USERNAME/TURN_PASSWORD: ${why}`,
              `${keep}; add the user to the replacement or fix the credentials`,
              'turn_replacement_refused',
            )
          : new CheckFailedError(
              `replacement TURN server ${url} refuses allocations: ${why}`,
              `${keep}; the replacement has no capacity or rejects us: name another --replacement`,
              'turn_replacement_refused',
            );
    return { ok: false, detail: `✗ Replacement TURN server not responding: ${why}`, error };
  }
}

export interface PersistOutcome {
  ok: boolean;
  detail: string;
  backup: string | null;
}

/**
 * Step 2: TURN_SERVERS into the env file (none loaded: said so, nothing to write). Instances whose
 * recorded launch environment sets TURN_SERVERS would bring their own value back on a restart: the
 * file is still written, but the step fails naming them, since restarts would not keep the change.
 */
export function persistTurnServers(
  file: string | null,
  servers: string[],
  source: string,
  shadowedBy: { instance: string; turn_servers: string }[],
  now: number,
): PersistOutcome {
  const value = servers.join(',');
  const stale = shadowedBy.filter((x) => x.turn_servers !== value);
  const shadowed = stale.length
    ? `; but ${stale.map((x) => x.instance).join(', ')} ${stale.length === 1 ? 'is' : 'are'} recorded with TURN_SERVERS in ${stale.length === 1 ? 'its' : 'their'} launch environment (${stale[0]!.turn_servers}), which a restart uses instead of the file: start ${stale.length === 1 ? 'it' : 'them'} again with the new list (ifmesh up or ifmesh deploy)`
    : '';
  if (!file)
    return {
      ok: stale.length === 0,
      detail: `no env file was loaded (--config, IFMESH_CONFIG or config/webrtc-production.env): TURN_SERVERS=${value} is not persisted; set it where the configuration comes from${shadowed}`,
      backup: null,
    };
  try {
    const u = setEnvFileKey(file, 'TURN_SERVERS', value, now);
    const shadow =
      source === 'env' || source === 'flag'
        ? ` (TURN_SERVERS is also set in the ${source === 'env' ? 'environment' : '--set flags'}, which wins over the file: change it there too)`
        : '';
    return {
      ok: stale.length === 0,
      detail: `${
        u.changed
          ? `TURN_SERVERS=${value} written to ${file} (backup ${u.backup})`
          : `${file} already has TURN_SERVERS=${value}`
      }${shadow}${shadowed}`,
      backup: u.changed ? u.backup : null,
    };
  } catch (err) {
    return {
      ok: false,
      detail: `could not write TURN_SERVERS to ${file}: ${(err as Error).message}; a restart would bring back the failed server`,
      backup: null,
    };
  }
}

/**
 * Instances ifmesh recorded with TURN_SERVERS in their launch environment would bring the failed
 * server back on their next restart: their recorded environment takes the new list too. Returns the
 * shadowing list as it now stands (empty stale entries once rewritten) and the instances rewritten.
 */
export function rewriteLaunchTurnServers(
  state: StateDir,
  shadowedBy: { instance: string; turn_servers: string }[],
  servers: string[],
): { shadowedBy: { instance: string; turn_servers: string }[]; rewritten: string[] } {
  const value = servers.join(',');
  const rewritten: string[] = [];
  const now = shadowedBy.map((x) => {
    if (x.turn_servers === value) return x;
    const rec = readProcess(state, x.instance);
    if (!rec?.spec || rec.spec.env.TURN_SERVERS === undefined) return x;
    updateProcess(state, x.instance, {
      spec: { ...rec.spec, env: { ...rec.spec.env, TURN_SERVERS: value } },
    });
    rewritten.push(x.instance);
    return { instance: x.instance, turn_servers: value };
  });
  return { shadowedBy: now, rewritten };
}

/**
 * Releases whose agent specs carry TURN_SERVERS with the failed server (a deploy's or canary's --set,
 * or the environment it ran in) would bring it back: a canary starts its candidates from the current
 * release's specs, a rollback restarts agents from an older release's. Each such spec gets the
 * replacement where the failed server was. A release record that no longer parses is left alone and
 * named. Runs under the deploy lock, as the failover does, so no canary writes a release meanwhile.
 */
export function rewriteReleaseTurnServers(
  state: StateDir,
  failed: string,
  replacement: string,
): { rewritten: string[]; unreadable: string[] } {
  const { records, unreadable } = scanReleases(state);
  const rewritten: string[] = [];
  for (const r of records) {
    let changed = false;
    const specs = r.agent_specs?.map((s) => {
      const list = s.env.TURN_SERVERS?.split(',').map((u) => u.trim());
      if (!list?.includes(failed)) return s;
      changed = true;
      const next = [...new Set(list.map((u) => (u === failed ? replacement : u)))].join(',');
      return { ...s, env: { ...s.env, TURN_SERVERS: next } };
    });
    if (!changed) continue;
    writeStateJson(state.releaseFile(r.id), { ...r, agent_specs: specs }, 0o600);
    rewritten.push(r.id);
  }
  return { rewritten, unreadable: unreadable.map((u) => u.name) };
}
