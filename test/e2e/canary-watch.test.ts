// `canary status --watch` as a person sees it (issue 25.5): a real canary on a deployed fleet, held
// right after its first agent moved (IFMESH_CANARY_PAUSE_AT), watched from a terminal (tmux) and
// from two pipes (lines, NDJSON), then let go through its analysis to its promotion. The terminal
// shows one view redrawn in place: the phase, the agents on each release, each gate's last
// measurement. In the full tier (npm run test:all): it deploys a fleet and runs a canary (~1 min).
import { describe, expect, it } from 'vitest';
import type { RunResult } from '../helpers/cli.js';
import { terminal } from '../helpers/tmux.js';
import { cli, deployed, dir, env, heldCanary, RTT_BUDGET, WINDOW } from './rollout-fixture.js';

describe('canary status --watch', () => {
  it('redraws one view in place on a terminal as the canary goes from its first agent to promoted; a line, or a document, per change in a pipe', async () => {
    const state = await deployed('canary-watch');
    const runner = await heldCanary(state, 'agents_moved', [
      '--steps',
      '1,100%',
      ...WINDOW,
      ...RTT_BUDGET,
      '--set',
      'TURN_FALLBACK_TIMEOUT_MS=4200',
    ]);
    let exited = false;
    void runner.exit.then(() => {
      exited = true;
    });

    const watch = ['canary', 'status', '--watch', '--timeout', '3m', '--state-dir', state];
    const t = terminal(watch, { cwd: dir, env });
    try {
      const piped = cli(['canary', 'status', '--watch', '--timeout', '3m'], state, 200_000);
      const ndjson = cli(['canary', 'status', '--watch', '--timeout', '3m', '--json'], state, 200_000);
      const held = await t.until((s) => s.includes('looked at'), 'the live view of the held canary');
      expect(held).toMatch(/^canary-\S+ progressing: /m);
      expect(held).toMatch(/^ {2}phase 1\/2 \(1\/3 → 100%\)$/m);
      expect(held).toMatch(/^ {2}candidate {2}\S+ \(.*\): agent-r1$/m);
      expect(held).toMatch(/^ {2}stable {5}\S+ \(.*\): agent-r2, agent-r3$/m);

      process.kill(runner.pid, 'SIGCONT');
      // Analysis: each check redraws the same view with the gates' last measurements.
      const frames: string[] = [];
      const analysing = await t.until((s) => {
        frames.push(s);
        return /analysis: [1-9]\d*\/20 checks/.test(s) && /^ {4}[✓✗?!] connection_success /m.test(s);
      }, 'a check of the analysis, redrawn');
      expect(analysing).toMatch(/^ {4}[✓✗?!] signature_failures /m);
      const done = await t.until(
        (s) => {
          frames.push(s);
          return / completed: /.test(s);
        },
        'the promotion, redrawn',
        120_000,
      );
      expect(await t.exitCode()).toBe(0);
      // Every frame seen is one view: one canary head, one phase line, never a stack of copies.
      for (const f of frames) {
        expect(f.match(/^canary-\S+ /gm)?.length ?? 0, f).toBeLessThanOrEqual(1);
        expect(f.match(/^ {2}phase /gm)?.length ?? 0, f).toBeLessThanOrEqual(1);
      }
      expect(frames.some((f) => f.includes('phase 2/2'))).toBe(true);
      expect(done).toMatch(/^ {2}candidate {2}\S+ \(.*\): agent-r1, agent-r2, agent-r3$/m);
      expect(done).toMatch(/^ {2}stable {5}\S+ \(.*\): no agent$/m);
      // The watch has ended: the view stays as it last stood, with no "looking" footer.
      expect(t.screen()).not.toContain('looked at');
      expect((await runner.exit).code).toBe(0);

      const lines = (r: RunResult) => r.stdout.trimEnd().split('\n');
      const p = await piped;
      expect(p.code, p.stderr).toBe(0);
      expect(lines(p)[0]).toMatch(
        /^\S+Z canary-\S+ progressing phase 1\/2: .*; candidate agent-r1; stable agent-r2,agent-r3/,
      );
      expect(lines(p).some((l) => /; checks [1-9]\d*\/20 \(/.test(l))).toBe(true);
      expect(lines(p).at(-1)).toMatch(
        /^\S+Z canary-\S+ completed phase 2\/2: .*; candidate agent-r1,agent-r2,agent-r3; stable -/,
      );
      const n = await ndjson;
      expect(n.code, n.stderr).toBe(0);
      const docs = lines(n).map((l) => JSON.parse(l));
      expect(docs[0]).toMatchObject({ status: 'progressing', on_candidate: ['agent-r1'], exit_code: 0 });
      expect(docs.some((d) => (d.analysis?.checks ?? 0) > 0)).toBe(true);
      expect(docs.at(-1)).toMatchObject({ status: 'completed', exit_code: 0, timed_out: false });
      // A document per change: none repeats the one before it (the time of the write aside).
      for (let i = 1; i < docs.length; i++)
        expect({ ...docs[i], updated_at: 0 }).not.toEqual({ ...docs[i - 1], updated_at: 0 });
    } finally {
      t.kill();
      if (!exited) process.kill(runner.pid, 'SIGKILL');
    }
  }, 300_000);
});
