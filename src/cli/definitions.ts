// ONE list of every command, from the definitions (src/cli/define.ts): path, summary, examples,
// arguments, flags and needs, as data for generators (README/docs command tables) and tests.
// Importing it loads every group's definitions but no command implementation: definitions import
// their ops with `import()` (test/unit/import-cycles.test.ts checks that nothing heavy is reached).
// The CLI itself does not use this list: it loads one group at a time through the registry.

import * as agent from '../../commands/agent/index.js';
import * as agents from '../../commands/agents/index.js';
import * as canary from '../../commands/canary/index.js';
import * as certs from '../../commands/certs/index.js';
import * as completion from '../../commands/completion/index.js';
import * as config from '../../commands/config/index.js';
import * as deploy from '../../commands/deploy/index.js';
import * as down from '../../commands/down/index.js';
import * as failover from '../../commands/failover/definitions.js';
import * as incident from '../../commands/incident/index.js';
import * as init from '../../commands/init/index.js';
import * as keys from '../../commands/keys/index.js';
import * as lab from '../../commands/lab/index.js';
import * as load from '../../commands/load/index.js';
import * as logs from '../../commands/logs/index.js';
import * as maintenance from '../../commands/maintenance/index.js';
import * as message from '../../commands/message/index.js';
import * as monitor from '../../commands/monitor/index.js';
import * as monitoring from '../../commands/monitoring/index.js';
import * as preflight from '../../commands/preflight/index.js';
import * as releases from '../../commands/releases/index.js';
import * as rollback from '../../commands/rollback/index.js';
import * as rotateKeys from '../../commands/rotate-keys/index.js';
import * as selftest from '../../commands/selftest/index.js';
import * as signaling from '../../commands/signaling/index.js';
import * as status from '../../commands/status/index.js';
import * as supervise from '../../commands/supervise/index.js';
import * as systemd from '../../commands/systemd/index.js';
import * as top from '../../commands/top/index.js';
import * as troubleshoot from '../../commands/troubleshoot/index.js';
import * as up from '../../commands/up/index.js';
import * as verify from '../../commands/verify/index.js';
import * as witness from '../../commands/witness/index.js';
import type { AnyDefinition, ArgSpec, Need } from './define.js';
import { shared } from './options.js';
import { commands } from './registry.js';

export interface FlagInfo {
  /** commander's flags string: '-c, --config <file>'. */
  flags: string;
  description: string;
  default?: unknown;
  choices?: readonly string[];
  required: boolean;
  /** The shared flag it is (src/cli/options.ts), if it is one. */
  shared?: string;
}

export interface CommandInfo {
  /** 'releases', 'keys generate'. */
  path: string;
  summary: string;
  examples: readonly string[];
  args: readonly ArgSpec[];
  flags: readonly FlagInfo[];
  needs: readonly Need[];
}

const GROUPS: Record<string, { definitions: readonly AnyDefinition[] }> = {
  keys,
  releases,
  selftest,
  down,
  supervise,
  preflight,
  logs,
  completion,
  rollback,
  init,
  top,
  config,
  message,
  status,
  up,
  verify,
  lab,
  monitor,
  systemd,
  troubleshoot,
  monitoring,
  agents,
  'rotate-keys': rotateKeys,
  certs,
  deploy,
  load,
  signaling,
  agent,
  incident,
  canary,
  maintenance,
  failover,
  witness,
};

function flagInfo(f: AnyDefinition['flags'][number]): FlagInfo {
  if (typeof f !== 'string')
    return {
      flags: f.flags,
      description: f.description,
      ...(f.default !== undefined ? { default: f.default } : {}),
      ...(f.choices ? { choices: f.choices } : {}),
      required: Boolean(f.required),
    };
  const o = shared(f);
  return {
    flags: o.flags,
    description: o.description,
    ...(o.argChoices ? { choices: o.argChoices } : {}),
    required: false,
    shared: f,
  };
}

/** Every command in the registry's order, from its group's definitions; hidden flags left out. */
export const commandDefinitions: readonly CommandInfo[] = commands.flatMap((group) => {
  const defs = GROUPS[group.name]?.definitions;
  if (!defs) throw new Error(`${group.name}: no definitions in src/cli/definitions.ts's GROUPS`);
  return defs.map((d) => ({
    path: d.path,
    summary: d.summary ?? group.summary,
    examples: d.examples,
    args: d.args ?? [],
    flags: d.flags.filter((f) => typeof f === 'string' || !f.hidden).map(flagInfo),
    needs: d.needs ?? [],
  }));
});
