// The failover guide's "Failover Classification" table (types A–E) as data: what fails, how far it
// reaches, how fast the guide expects recovery, whether a person must act, and the manual steps,
// each the ifmesh command that carries it out. `failover --help`, `failover list` and the README
// print it; `failover validate` holds a measured recovery time against `target_ms`.
import type { Scenario } from './validate.js';

export interface ScenarioClass {
  scenario: Scenario;
  /** The guide's words for each column. */
  type: string;
  component: string;
  scope: string;
  recovery_time: string;
  manual_intervention: string;
  /**
   * The recovery-time target an ifmesh run is held to: the guide's manual figure where it gives
   * one (an operator runs `ifmesh failover`), else its only figure (C's backoff ceiling, D, E).
   */
  target_ms: number;
  /** The guide's automatic figure, where it gives one (agents' own failover, no operator). */
  auto_target_ms: number | null;
  /** The ifmesh command for the scenario. */
  command: string;
  /** The manual procedure, step by step, as the guide orders it. */
  manual_steps: string[];
}

const S = 1_000;
const M = 60 * S;

export const CLASSIFICATION: readonly ScenarioClass[] = [
  {
    scenario: 'A',
    type: 'TURN Server Failure',
    component: 'Relay servers',
    scope: 'Per-peer',
    recovery_time: '5-30s (auto), <5m (manual)',
    manual_intervention: 'Often unnecessary',
    target_ms: 5 * M,
    auto_target_ms: 30 * S,
    command: 'ifmesh failover turn --failed URL --replacement URL',
    manual_steps: [
      'test the replacement TURN server with a real Allocate; a dead one is refused',
      'write TURN_SERVERS to the env file (backup kept), so restarts keep it',
      'reload the configuration on every signaling instance (POST /admin/reload-config, no restart)',
      'reconnect the peers still relayed through the failed server (POST /admin/reconnect-turn-peers)',
      'monitor until the witness sees them on the replacement (turn_connection_detected)',
      'log turn_server_failover_complete and validate the recovery',
    ],
  },
  {
    scenario: 'B',
    type: 'Signaling Server Failure',
    component: 'SDP/ICE relay',
    scope: 'Global',
    recovery_time: '30s-2m (auto), <5m (manual)',
    manual_intervention: 'May be required',
    target_ms: 5 * M,
    auto_target_ms: 2 * M,
    command: 'ifmesh failover signaling [--failed URL] [--action restart|promote-backup]',
    manual_steps: [
      'restart the failed instance from its process record, or promote the nginx backup',
      'monitor the stabilisation (5 minutes): health and failed connections',
      'log signaling_server_recovery and validate the recovery',
    ],
  },
  {
    scenario: 'C',
    type: 'Network Partition',
    component: 'Mesh connectivity',
    scope: 'Regional',
    recovery_time: '30s-17m (exponential backoff)',
    manual_intervention: 'Manual intervention needed',
    target_ms: 17 * M,
    auto_target_ms: null,
    command: 'ifmesh failover partition [--agent ID]',
    manual_steps: [
      'find the agent pairs not reported connected',
      'trigger mesh healing, one end of each pair, staggered (mesh_healing_manual_triggered)',
      'wait until the pairs report connected, then validate the recovery',
    ],
  },
  {
    scenario: 'D',
    type: 'Certificate Expiration',
    component: 'DTLS/TLS',
    scope: 'Global on restart',
    recovery_time: '<1 hour',
    manual_intervention: 'Required (automated renewal)',
    target_ms: 60 * M,
    auto_target_ms: null,
    command: 'ifmesh failover cert',
    manual_steps: [
      'renew the certificate (certbot), the old pair backed up',
      'restart the signaling instances serving it, one at a time',
      'validate the recovery',
    ],
  },
  {
    scenario: 'E',
    type: 'SRTP Key Compromise',
    component: 'Encryption keys',
    scope: 'All peers',
    recovery_time: '<1 minute',
    manual_intervention: 'Manual incident response',
    target_ms: 1 * M,
    auto_target_ms: null,
    command: 'ifmesh failover keys --incident-id ID',
    manual_steps: [
      'declare the security incident (srtp_key_compromise_detected)',
      "rotate every agent's keys (POST /admin/rotate-keys)",
      'validate the recovery',
    ],
  },
];

export function classOf(scenario: Scenario): ScenarioClass {
  return CLASSIFICATION.find((c) => c.scenario === scenario)!;
}
