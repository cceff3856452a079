import { defineCommand } from '../../src/cli/define.js';
import { QUERY_FLAGS, type WitnessQueryFlags } from './flags.js';

export default defineCommand<WitnessQueryFlags, [string | undefined]>({
  path: 'witness query',
  summary: 'query the audit log (CONTRACT §3) with JSON or shorthand flags',
  examples: [
    'ifmesh witness query --event connection_state_changed --where metadata.state=failed --since 1h',
  ],
  args: [{ name: '[json]', description: 'a full /api/query body' }],
  flags: QUERY_FLAGS,
  async run({ args: [json], flags, ctx, out }) {
    const [
      { witnessEndpoint, observeWitness },
      { buildQueryBody, runWitnessQuery },
      { eventLine },
      { resolveState },
    ] = await Promise.all([
      import('./client.js'),
      import('../../src/ops/witness/query.js'),
      import('../../src/ui/witness.js'),
      import('../../src/state/state-dir.js'),
    ]);
    const { url } = await witnessEndpoint(flags, ctx);
    const answer = await runWitnessQuery({
      url,
      body: buildQueryBody(json, flags),
      token: ctx.env.WITNESS_QUERY_TOKEN,
      dispatcher: ctx.dispatcher,
    });
    const failed = await observeWitness(url, out, resolveState(ctx.cwd, ctx.env, flags.stateDir), ctx);
    out.result(answer, (a, c) =>
      [
        ...a.results.map((e) => eventLine(e, c)),
        c.dim(`${a.count} event(s)${a.next_cursor ? ', more with --limit or the cursor' : ''}`),
      ].join('\n'),
    );
    return failed ? 'checkFailed' : undefined;
  },
});
