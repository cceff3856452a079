import { defineCommand, failedIf } from '../../src/cli/define.js';

type Flags = { yes?: boolean; stateDir?: string; json?: boolean };

export default defineCommand<Flags, [string], 'state'>({
  path: 'witness trust',
  summary: "show a witness's presented key beside the held one; --yes accepts it (known_hosts)",
  examples: ['ifmesh witness trust https://witness.example.net:8080 --yes'],
  args: [{ name: '<url>', description: 'IF.witness base URL' }],
  flags: [{ flags: '--yes', description: 'accept the presented key for this URL' }, 'state-dir', 'json'],
  needs: ['state'],
  newState: true,
  async run({ args: [url], flags, needs: { state }, ctx, out }) {
    const [{ trustWitness }, { renderTrust }] = await Promise.all([
      import('../../src/ops/witness/trust.js'),
      import('../../src/ui/witness.js'),
    ]);
    const report = await trustWitness({ url, state, accept: Boolean(flags.yes), dispatcher: ctx.dispatcher });
    out.result(report, renderTrust);
    return failedIf(Boolean(report.changed && !report.accepted));
  },
});
