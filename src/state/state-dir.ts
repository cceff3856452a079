// One model of the state directory (STYLE rule 13): every path under it is named here and nowhere
// else, so a new procedure asks this module where things live instead of joining strings.
import path from 'node:path';
import { stageStateDir } from '../config/stage.js';

/**
 * Where ifmesh keeps local state: --state-dir, else $IFMESH_STATE_DIR, else ./.ifmesh; with a
 * `stage` (--stage), that root's stages/<stage>/ (src/config/stage.ts).
 */
export function resolveStateDir(
  cwd: string,
  env: Record<string, string | undefined>,
  flag?: string,
  stage?: string,
): string {
  return stageStateDir(path.resolve(cwd, flag ?? env.IFMESH_STATE_DIR ?? '.ifmesh'), stage);
}

/** The state directory at `resolveStateDir(cwd, env, flag, stage)`, as the handle ops take. */
export function resolveState(
  cwd: string,
  env: Record<string, string | undefined>,
  flag?: string,
  stage?: string,
): StateDir {
  return openStateDir(resolveStateDir(cwd, env, flag, stage));
}

/**
 * The handle on one state directory that ops and helpers take instead of a bare path: `root` plus
 * every named path under it. Opening touches nothing on disk.
 */
export function openStateDir(root: string) {
  const at = (...p: string[]) => path.join(root, ...p);
  return {
    root,
    /** The local stack `up` made: ports of every component. */
    stack: at('stack.json'),
    /** Generated local secrets (0600), never printed. */
    secrets: at('secrets.json'),
    adminToken: at('admin.token'),
    witnessDb: at('witness.db'),
    /** One record per process ifmesh started, with its role (src/state/processes.ts). */
    run: at('run'),
    processFile: (name: string) => at('run', `${name}.json`),
    logs: at('logs'),
    /** Services run by systemd (src/ops/fleet/systemd.ts): its settings, and each unit's environment file. */
    systemdSettings: at('systemd', 'settings.json'),
    systemdEnv: at('systemd', 'env'),
    logFile: (name: string) => at('logs', `${name}.log`),
    releases: at('releases'),
    releaseFile: (id: string) => at('releases', `${id}.json`),
    currentRelease: at('releases', 'current'),
    /** An installed release (src/ops/release/install.ts): its npm prefix, manifest and tarball. */
    releaseBuild: (id: string) => at('releases', id),
    /** Native modules of the running ifmesh offered to release installs (prebuild-install's local prebuilds). */
    releasePrebuilds: at('releases', '.prebuilds'),
    /** Locks: `deploy` now; incidents and maintenance take their own later. */
    lock: (name: string) => at(`${name}.lock`),
    reports: at('reports'),
    /** Incident reports: `<id>.md` and `<id>.json`. */
    reportFile: (name: string) => at('reports', name),
    /** One record per incident (src/ops/incident/store.ts), open or resolved. */
    incidents: at('incidents'),
    incidentFile: (id: string) => at('incidents', `${id}.json`),
    /** Events waiting for an unreachable witness, one NDJSON file per producer. */
    spool: at('witness-spool'),
    checkpoints: at('witness-checkpoint.json'),
    /** The prefix of the nginx `up` and `deploy` run, and the configuration they write there. */
    nginx: at('nginx'),
    nginxConf: at('nginx', 'nginx.conf'),
    /** The local stack's agents: `<id>.json` (its config) beside `<id>.key` (its identity). */
    agents: at('agents'),
    agentConfigFile: (id: string) => at('agents', `${id}.json`),
    /** `agent swarm`: one identity file per agent. */
    swarmKeyFile: (agentId: string) => at('swarm-keys', `${agentId}.key`),
    /** Config files (0600, with their password) of the local redis-server and coturn instances. */
    redisConf: (name: string) => at('redis', `${name}.conf`),
    turnConf: (name: string) => at('coturn', `${name}.conf`),
    /** The local PostgreSQL of `up --witness-db postgres`: its cluster and its socket directory. */
    postgresData: at('postgres', 'data'),
    postgresSocket: at('postgres', 'sock'),
    /** `up --with-prometheus`: the exported monitoring files, and Prometheus's own data. */
    monitoring: at('monitoring'),
    prometheusData: at('prometheus-data'),
    /** The last key rotation (src/ops/keys/schedule.ts). */
    keyRotation: at('key-rotation.json'),
    /** Signaling's id → key bindings and revoked keys (docs/security.md "Identity"). */
    signalingIdentities: at('signaling-identities.ndjson'),
    /** The canary in progress or the last one (src/ops/rollout/canary-state.ts). */
    canary: at('canary.json'),
    /** An operator's `canary promote` / `abort` waiting for the running canary to act on it. */
    canaryRequest: at('canary-request.json'),
    /** Each procedure's journal (src/ops/procedure.ts): its last run, the step it reached, whether it finished. */
    procedures: at('procedures'),
    procedureFile: (name: string) => at('procedures', `${name}.json`),
    /** Identities signaling refuses (`ifmesh agents block`), read by every instance of the state dir. */
    blockList: at('signaling-blocklist.json'),
    /** `maintenance`: the logrotate configuration it generates for logs/, and logrotate's own state. */
    logrotateConf: at('logrotate.conf'),
    logrotateState: at('logrotate.status'),
    dailyReport: (yyyymmdd: string) => at('reports', `daily-health-${yyyymmdd}.json`),
    weeklyReport: (yyyymmdd: string) => at('reports', `weekly-${yyyymmdd}.json`),
  };
}

export type StateDir = ReturnType<typeof openStateDir>;
