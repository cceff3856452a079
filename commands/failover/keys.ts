import { durationFlag } from '../../src/cli/options.js';
import type { FailoverFlags } from './flags.js';
import { scenario } from './scenario.js';

export default scenario<FailoverFlags & { incidentId?: string; reason?: string }>(
  'E',
  {
    name: 'keys',
    summary: 'Scenario E: emergency SRTP key rotation',
    example: 'ifmesh failover keys --incident-id SEC-42',
    flags: [
      {
        flags: '--incident-id <id>',
        description: 'the security incident (logs srtp_key_compromise_detected)',
      },
      {
        flags: '--reason <text>',
        description: 'why (default security_incident with --incident-id, else scheduled)',
      },
    ],
  },
  async (flags, s, id) => {
    const [{ planKeysFailover }, { planRotation }] = await Promise.all([
      import('../../src/ops/failover/scenarios.js'),
      import('../../src/ops/keys/rotate.js'),
    ]);
    return planKeysFailover({
      failoverId: id,
      signaling: s.urls,
      keys: planRotation({
        signaling: s.http,
        reason: flags.reason,
        incidentId: flags.incidentId,
        timeoutMs: durationFlag(flags.timeout, '--timeout', { max: 3_600_000 }),
      }),
    });
  },
);
