import type { FlagSpec } from '../../src/cli/define.js';
import {
  type ConfigFlags,
  intFlag,
  MESH_FLAGS,
  RTT_BUDGET_FLAG,
  rttBudgetMs,
  TEMP_AGENT_FLAGS,
} from '../../src/cli/options.js';
import type { DeliveryCheck } from '../../src/ops/failover/run.js';

export type FailoverFlags = ConfigFlags & {
  signaling?: string;
  witness?: string;
  stateDir?: string;
  json?: boolean;
  dryRun?: boolean;
  id?: string;
  agents: string;
  messages: string;
  loopback?: boolean;
  stun?: string;
  insecure?: boolean;
  timeout: string;
  maxRttP95: string;
};

/** `failover validate`'s and every scenario's: the fleet and the message delivery check. */
export const VALIDATION_FLAGS: readonly FlagSpec[] = [
  ...MESH_FLAGS,
  RTT_BUDGET_FLAG,
  { flags: '--agents <n>', description: 'temporary agents for the message delivery check', default: '3' },
  {
    flags: '--messages <n>',
    description: 'signed pings per pair in the message delivery check',
    default: '10',
  },
  ...TEMP_AGENT_FLAGS,
  {
    flags: '--timeout <duration>',
    description: 'time allowed for each wait (peers on the replacement, a restart)',
    default: '60s',
  },
];

export const SCENARIO_FLAGS: readonly FlagSpec[] = [
  ...VALIDATION_FLAGS,
  { flags: '--id <failover-id>', description: 'the failover id logged on every event (default: a new one)' },
  { flags: '--dry-run', description: 'print the plan and change nothing' },
];

/** The message delivery check's flags, read before anything is changed (a typo fails first). */
export const deliveryCheck = (flags: FailoverFlags): DeliveryCheck => ({
  agents: intFlag(flags.agents, '--agents', 2, 50),
  messages: intFlag(flags.messages, '--messages', 1, 10_000),
  maxRttP95Ms: rttBudgetMs(flags.maxRttP95),
  stun: flags.stun,
  loopback: Boolean(flags.loopback),
  insecure: Boolean(flags.insecure),
});
