import type { FlagSpec } from '../../src/cli/define.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** `canary`'s own flags: the phases, the analysis, the candidate. */
export const CANARY_FLAGS: readonly FlagSpec[] = [
  'config',
  'set',
  'json',
  'stage',
  {
    flags: '--canary-agents <n>',
    description: 'agents moved in the first phase (overrides the first step)',
  },
  {
    flags: '--steps <list>',
    description: 'agents on the candidate per phase: counts or percentages',
    default: '1,25%,100%',
  },
  {
    flags: '--monitor <duration>',
    description: 'analysis window after each phase but the last',
    default: '5m',
  },
  { flags: '--interval <duration>', description: 'time between analysis checks', default: '60s' },
  {
    flags: '--failure-limit <n>',
    description: 'failed checks tolerated per analysis (0: roll back on the first)',
    default: '0',
  },
  {
    flags: '--consecutive-error-limit <n>',
    description: 'checks in a row a gate may be unmeasurable before it fails',
    default: '4',
  },
  {
    flags: '--optional-gate <gate>',
    description: 'a gate whose window may end unmeasured (default: rtt_p95_ms); repeatable',
    parse: collect,
  },
  {
    flags: '--threshold <NAME=VALUE>',
    description: 'override a threshold, e.g. error_rate=0.02; repeatable',
    parse: collect,
  },
  {
    flags: '--freeze-on-failure',
    description: 'on a failed analysis keep the canary for inspection (then promote or abort)',
  },
  {
    flags: '--register-timeout <duration>',
    description: 'how long each moved agent may take to register on its new release before the phase fails',
    default: '20s',
  },
  {
    flags: '--agents-dir <dir>',
    description: "the candidate's agent configs (default: the stable release's)",
  },
  {
    flags: '--release <source>',
    description:
      "the candidate's code, installed once into <state>/releases/<id>/: a tarball, a directory, a git ref of the checkout or an npm spec (default: the stable release's); with --stage production, also the id of a release staging promoted (its code and --set changes)",
  },
  { flags: '--force', description: 'with --stage production: take a release that staging did not promote' },
  {
    flags: '--label <name>',
    description:
      "the candidate's name in `releases` (default: its code's version, or for a configuration change the stable's name +config-HASH)",
  },
  {
    flags: '--keep-releases <n>',
    description: 'release records, and their installed code, kept for rollback',
    default: '10',
  },
  'state-dir',
  'witness',
  { flags: '--dry-run', description: 'print the plan and change nothing' },
];
