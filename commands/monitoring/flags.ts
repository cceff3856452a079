import type { FlagSpec } from '../../src/cli/define.js';
import { type ConfigFlags, MESH_FLAGS } from '../../src/cli/options.js';

export type MonitoringFlags = ConfigFlags & {
  json?: boolean;
  signaling?: string;
  witness?: string;
  threshold?: string[];
};

/** Where the mesh is, and the thresholds: after each command's own flags. */
export const TARGET_FLAGS: readonly FlagSpec[] = [
  ...MESH_FLAGS,
  {
    flags: '--threshold <NAME=VALUE>',
    description: 'override a threshold, e.g. memory_mb=500; repeatable',
    parse: (v: string, prev: string[] = []) => [...prev, v],
  },
];
