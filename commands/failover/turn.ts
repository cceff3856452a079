import path from 'node:path';
import type { FailoverFlags } from './flags.js';
import { scenario } from './scenario.js';

type Flags = FailoverFlags & { failed?: string; replacement?: string; probe: boolean };

export default scenario<Flags>(
  'A',
  {
    name: 'turn',
    summary: 'Scenario A: replace a failed TURN server',
    example: 'ifmesh failover turn --failed turn:10.0.0.5:3478 --replacement turn:10.0.0.6:3478 --dry-run',
    flags: [
      {
        flags: '--failed <url>',
        description: 'the TURN server that failed (turn:host:port)',
        required: true,
      },
      { flags: '--replacement <url>', description: 'the TURN server to use instead', required: true },
      {
        flags: '--no-probe',
        description: 'switch without testing the replacement first (the guide’s step 1)',
      },
    ],
  },
  async (flags, s, id, ctx) => {
    const { planTurnFailover } = await import('../../src/ops/failover/scenarios.js');
    const source = s.loaded.sources.TURN_SERVERS?.kind ?? 'default';
    return planTurnFailover({
      failoverId: id,
      signaling: s.urls,
      turnServers: s.fleet.turn,
      failed: flags.failed!,
      replacement: flags.replacement!,
      probe: flags.probe,
      credentials: s.fleet.turn_credentials !== null,
      // loaded.file is shown relative to the working directory; the plan names it absolutely.
      envFile: s.loaded.file ? path.resolve(ctx.cwd, s.loaded.file) : undefined,
      turnServersSource: source === 'default' && s.fleet.turn.length ? 'records' : source,
      shadowedBy: s.fleet.records.flatMap((r) =>
        // Agents too: deploy gives them its --set values, which a restart starts them on again.
        (r.role === 'signaling' || r.role === 'agents') && r.spec?.env.TURN_SERVERS !== undefined
          ? [{ instance: r.name, turn_servers: r.spec.env.TURN_SERVERS }]
          : [],
      ),
    });
  },
);
