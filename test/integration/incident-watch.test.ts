import { afterEach, describe, expect, it } from 'vitest';
import { type RunResult, spawnCli, stateDir, tempDir } from '../helpers/cli.js';
import { receiver } from '../helpers/notify-receivers.js';
import { freePort, type Service, startSignalingProcess } from '../helpers/processes.js';
import { terminal } from '../helpers/tmux.js';
import { waitFor } from '../helpers/wait.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('incident show --watch', () => {
  it('redraws one view in place as the incident is acknowledged and resolved; a line, or a document, per change in a pipe', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const sig: Service = await startSignalingProcess();
    cleanups.push(() => sig.stop());
    const hooks = await receiver();
    const env = {
      PAGERDUTY_EVENTS_URL: `${hooks.base}/v2/enqueue`,
      PAGERDUTY_INTEGRATION_KEY: 'pd-key',
      SLACK_WEBHOOK_URL: `${hooks.base}/slack`,
    };
    const flags = [
      '--state-dir',
      stateDir(dir),
      '--signaling',
      sig.url,
      '--witness',
      `http://127.0.0.1:${await freePort()}`,
    ];
    const cli = (...argv: string[]) => spawnCli([...argv, ...flags], { cwd: dir, env, timeoutMs: 60_000 });
    // What the two piped watchers have printed so far: the test resolves only once each has seen
    // the ack, so a slow machine cannot fold ack and resolve into one look.
    const seen = { piped: '', ndjson: '' };
    const watch = (key: keyof typeof seen, ...argv: string[]) =>
      spawnCli([...argv, ...flags], {
        cwd: dir,
        env,
        timeoutMs: 60_000,
        onStdout: (s) => {
          seen[key] = s;
        },
      });
    const declared = await cli('incident', 'p1', '--json');
    expect(declared.code, declared.stderr).toBe(0);
    const id = JSON.parse(declared.stdout).id as string;

    const piped = watch('piped', 'incident', 'show', id, '--watch');
    const ndjson = watch('ndjson', 'incident', 'show', id, '--watch', '--json');
    const t = terminal(['incident', 'show', id, '--watch', ...flags], { cwd: dir, env, rows: 30 });
    cleanups.push(() => t.kill());
    // A second person watching stops with Ctrl-C: the view stays as it stood, exit 130.
    const stopped = terminal(['incident', 'show', id, '--watch', ...flags], { cwd: dir, env, rows: 30 });
    cleanups.push(() => stopped.kill());
    await stopped.until((s) => s.includes('looked at'), 'the second live view');
    stopped.keys('C-c');
    expect(await stopped.exitCode()).toBe(130);
    expect(stopped.screen()).toMatch(/stopped watching at \d\d:\d\d:\d\d$/m);
    expect(stopped.screen()).toContain(`P1 INCIDENT ${id}`);
    const view = await t.until(
      (s) => s.includes('looked at') && s.includes('On-Call Engineer'),
      'the live view of the open incident',
    );
    expect(view).toContain(`P1 INCIDENT ${id}`);
    expect(view).toMatch(/✓ notified pagerduty .*\(trigger, level 1\)/);
    expect(view).toMatch(/L1 On-Call Engineer .*: paged /);

    const acked = await cli('incident', 'ack', id);
    expect(acked.code, acked.stderr).toBe(0);
    const ackView = await t.until((s) => /L1 On-Call Engineer .*: acknowledged/.test(s), 'the ack, redrawn');
    // Replaced in place: one incident head on the screen, not a copy per look.
    expect(ackView.match(new RegExp(`INCIDENT ${id}`, 'g'))).toHaveLength(1);
    await waitFor(
      () => seen.piped.includes('acknowledged L1;') && seen.ndjson.includes('"status":"acknowledged"'),
      'both piped watchers to show the ack',
      { timeoutMs: 30_000 },
    );

    const resolved = await cli('incident', 'resolve', id);
    expect(resolved.code, resolved.stderr).toBe(0);
    expect(await t.exitCode()).toBe(0);
    const last = t.screen();
    expect(last).toContain(`P1 RESOLVED ${id}`);
    expect(last).not.toContain(`P1 INCIDENT ${id}`);
    expect(last).not.toContain('looked at');

    const lines = (r: RunResult) => r.stdout.trimEnd().split('\n');
    const p = await piped;
    expect(p.code, p.stderr).toBe(0);
    // Open (as declared, or already acknowledged if the ack came before its first look), acknowledged, resolved.
    expect(lines(p)[0]).toMatch(
      new RegExp(
        `^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z ${id} open level 1(, acknowledged L1)?; \\d+ steps, \\d+ notices; next: `,
      ),
    );
    expect(lines(p).some((l) => l.includes(`${id} open level 1, acknowledged L1;`))).toBe(true);
    expect(lines(p).at(-1)).toMatch(
      new RegExp(`Z ${id} resolved level 1, acknowledged L1; .*; next: nobody$`),
    );
    expect(lines(p).length).toBeGreaterThanOrEqual(3);
    const n = await ndjson;
    expect(n.code, n.stderr).toBe(0);
    const docs = lines(n).map((l) => JSON.parse(l));
    expect(docs[0]).toMatchObject({ id, status: 'open' });
    expect(docs.some((d) => d.escalation.levels[0].status === 'acknowledged' && d.status === 'open')).toBe(
      true,
    );
    expect(docs.at(-1)).toMatchObject({ id, status: 'resolved' });
    // A document per change: no two in a row the same.
    for (let i = 1; i < docs.length; i++) expect(docs[i]).not.toEqual(docs[i - 1]);
  }, 90_000);
});
