// The command groups, by name and summary: what `ifmesh --help` lists without loading any of them.
// A group's definitions (commands/<group>/*.ts, src/cli/define.ts) are loaded only when it is
// invoked. Nothing under commands/ imports this module (test/unit/import-cycles.test.ts).
import type { Command } from 'commander';
import type { AnyDefinition, CommandIo } from './define.js';

export type { CommandIo } from './define.js';

export interface CommandModule {
  /** Adds options, arguments, sub-commands and the action to `cmd`. */
  register(cmd: Command, io: CommandIo): void;
  /** The group's definitions (commands/<group>/index.ts): each one's examples show in its --help. */
  definitions: readonly AnyDefinition[];
}

export interface CommandEntry {
  name: string;
  summary: string;
  /** It needs every command registered, not only itself (`completion` walks the whole tree). */
  tree?: true;
  load: () => Promise<CommandModule>;
}

// Commands are imported only when invoked, so `ifmesh --help` never loads werift, ink or SQLite.
// A command appears here only once it works.
export const commands: CommandEntry[] = [
  {
    name: 'init',
    summary:
      'Start a project: a commented env file with generated secrets, and N agent configs with their Ed25519 keys',
    load: () => import('../../commands/init/index.js'),
  },
  {
    name: 'up',
    summary: 'Bring up a complete local mesh (witness, coturn, signaling, agents) and verify it',
    load: () => import('../../commands/up/index.js'),
  },
  {
    name: 'supervise',
    summary:
      "Keep the state dir's services running: restart a dead one from its launch spec, with backoff (up and deploy start it)",
    load: () => import('../../commands/supervise/index.js'),
  },
  {
    name: 'deploy',
    summary: 'Deploy signaling instances behind nginx and the agents of config/agents, recording a release',
    load: () => import('../../commands/deploy/index.js'),
  },
  {
    name: 'systemd',
    summary:
      "Run the state's services as systemd units (install) or remove them (uninstall); IFMESH_SYSTEMD_RUN reaches another systemd",
    load: () => import('../../commands/systemd/index.js'),
  },
  {
    name: 'canary',
    summary:
      'Canary a release change on some agents, gated by analysis, then promote (status, promote, abort)',
    load: () => import('../../commands/canary/index.js'),
  },
  {
    name: 'monitor',
    summary: "Watch a deployment's witness events and roll back on a breach (automated rollback monitor)",
    load: () => import('../../commands/monitor/index.js'),
  },
  {
    name: 'rollback',
    summary: 'Go back to the previous release (or a named one), health-checked, restoring on failure',
    load: () => import('../../commands/rollback/index.js'),
  },
  {
    name: 'releases',
    summary: 'The release history: id, ref, config hash, deployment id, time, who, outcome',
    load: () => import('../../commands/releases/index.js'),
  },
  {
    name: 'preflight',
    summary:
      'Check everything a deployment needs (Node, dependencies, config, port, TLS, witness, STUN, TURN, build)',
    load: () => import('../../commands/preflight/index.js'),
  },
  {
    name: 'status',
    summary: 'Show every process of the local stack (pid, health, uptime, URL) and the mesh',
    load: () => import('../../commands/status/index.js'),
  },
  {
    name: 'down',
    summary: 'Stop every process of the local stack',
    load: () => import('../../commands/down/index.js'),
  },
  {
    name: 'logs',
    summary: "Print the logs of the local stack's processes",
    load: () => import('../../commands/logs/index.js'),
  },
  {
    name: 'selftest',
    summary: 'Check this installation: bundled configs validate, Ed25519 and IFMessage signing interoperate',
    load: () => import('../../commands/selftest/index.js'),
  },
  {
    name: 'config',
    summary: 'Validate and show the mesh configuration (config/webrtc-production.env)',
    load: () => import('../../commands/config/index.js'),
  },
  {
    name: 'keys',
    summary: 'Generate and inspect Ed25519 agent identities',
    load: () => import('../../commands/keys/index.js'),
  },
  {
    name: 'signaling',
    summary: 'Run a signaling instance: registration with proof of key, SDP/ICE relay, the runbook HTTP API',
    load: () => import('../../commands/signaling/index.js'),
  },
  {
    name: 'agent',
    summary: 'Run werift mesh agents: signed DataChannels to every peer, signaling failover, reports',
    load: () => import('../../commands/agent/index.js'),
  },
  {
    name: 'load',
    summary:
      'Load the fleet: N temporary agents (in one or several processes) exchange signed pings over every pair at a rate for a duration; delivery, RTT percentiles, throughput',
    load: () => import('../../commands/load/index.js'),
  },
  {
    name: 'verify',
    summary: 'Prove the mesh works: temporary agents exchange signed messages over every pair',
    load: () => import('../../commands/verify/index.js'),
  },
  {
    name: 'witness',
    summary: 'Run and use the IF.witness audit log: serve, query, tail, verify, spool',
    load: () => import('../../commands/witness/index.js'),
  },
  {
    name: 'message',
    summary: 'Sign and verify IFMessages by hand, for debugging',
    load: () => import('../../commands/message/index.js'),
  },
  {
    name: 'monitoring',
    summary:
      "Export the runbook's Prometheus rules and Grafana dashboard; check live metrics against its thresholds",
    load: () => import('../../commands/monitoring/index.js'),
  },
  {
    name: 'top',
    summary: 'Live view of agents, connections, message rates, TURN usage and firing alerts',
    load: () => import('../../commands/top/index.js'),
  },
  {
    name: 'incident',
    summary:
      'Declare and run an incident (p1, p2, security, cert-expiry, turn-failure); list, show, escalate, resolve',
    load: () => import('../../commands/incident/index.js'),
  },
  {
    name: 'troubleshoot',
    summary: "Diagnose with the failover guide's decision trees on live evidence: path, root cause, actions",
    load: () => import('../../commands/troubleshoot/index.js'),
  },
  {
    name: 'agents',
    summary: 'Block, unblock and list refused agent identities on every signaling instance',
    load: () => import('../../commands/agents/index.js'),
  },
  {
    name: 'rotate-keys',
    summary: "Rotate every agent's keys through the signaling admin API (emergency-srtp-key-rotation.sh)",
    load: () => import('../../commands/rotate-keys/index.js'),
  },
  {
    name: 'certs',
    summary:
      'Check the TLS certificate and rotate it, restarting signaling one instance at a time (certificate-rotation-procedure.sh)',
    load: () => import('../../commands/certs/index.js'),
  },
  {
    name: 'maintenance',
    summary:
      'Cron-safe daily and weekly maintenance (daily-maintenance.sh, weekly-maintenance.sh) and their crontab',
    load: () => import('../../commands/maintenance/index.js'),
  },
  {
    name: 'failover',
    summary:
      "The failover guide's scenarios (A turn, B signaling, C partition, D cert, E keys) and validate-failover-recovery.sh",
    load: () => import('../../commands/failover/index.js'),
  },
  {
    name: 'lab',
    summary:
      'A NAT lab in network namespaces (root): coturn, signaling and the witness on a public side, hosts behind cone or symmetric NATs',
    load: () => import('../../commands/lab/index.js'),
  },
  {
    name: 'completion',
    summary:
      'Print shell completion for bash, zsh or fish: sub-commands at every level, flags and their values',
    tree: true,
    load: () => import('../../commands/completion/index.js'),
  },
];
