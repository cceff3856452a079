import type { FlagSpec } from '../../src/cli/define.js';
import type { ConfigFlags } from '../../src/cli/options.js';
import type { QueryFlags } from '../../src/ops/witness/query.js';

export type WitnessQueryFlags = QueryFlags &
  ConfigFlags & { witness?: string; stateDir?: string; json?: boolean };

const collect = (v: string, p: string[] = []) => [...p, v];

/** `witness query`'s and `witness tail`'s: the witness, and the filters as shorthand flags. */
export const QUERY_FLAGS: readonly FlagSpec[] = [
  'config',
  'set',
  'json',
  'witness',
  { flags: '--event <name>', description: 'event name' },
  { flags: '--agent <id>', description: 'agent_id' },
  { flags: '--peer <id>', description: 'peer_id' },
  { flags: '--trace <id>', description: 'trace_id' },
  { flags: '--deployment <id>', description: 'deployment_id' },
  { flags: '--incident <id>', description: 'incident_id' },
  { flags: '--failover <id>', description: 'failover_id' },
  { flags: '--since <duration>', description: 'from this long ago (30s, 5m, 1h, 7d) or an ISO time' },
  { flags: '--until <duration>', description: 'to this long ago, or an ISO time (default now)' },
  {
    flags: '--where <KEY=VALUE>',
    description: 'equality on a field or dotted path; repeatable',
    parse: collect,
  },
  {
    flags: '--regex <KEY=PATTERN>',
    description: 'RE2 regular expression on a field; repeatable',
    parse: collect,
  },
  { flags: '--limit <n>', description: 'at most this many results (1-10000)' },
  'state-dir',
];
