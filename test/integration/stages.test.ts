// Issue 19, point 3, through the CLI and on disk, without fleets (the quick tier's proof; the two real
// fleets are in test/e2e/stages.test.ts): each stage reads its own env file and state directory, and a
// canary into production takes the release staging promoted (by its id, inheriting its ref and its
// --set changes), refuses one staging did not promote with one line saying what to do, and takes it
// anyway with --force. Dry runs: the check runs before anything is locked, written or started.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Release, recordRelease } from '../../src/ops/deploy/releases.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { run, tempDir } from '../helpers/cli.js';
import { makeCert } from '../helpers/tls.js';

const { dir, cleanup } = tempDir();
const root = path.join(dir, 'state');
const staging = openStateDir(path.join(root, 'stages/staging'));
const production = openStateDir(path.join(root, 'stages/production'));

const release = (id: string, created: string, o: Partial<Release> = {}): Release => ({
  id,
  deployment_id: id,
  ref: 'v1',
  config_hash: `hash-${id}`,
  created_at: created,
  processes: [],
  agents: ['agent-1', 'agent-2'],
  agent_specs: ['agent-1', 'agent-2'].map((a) => ({
    agent_id: a,
    config: path.join(dir, `config/agents/${a}.json`),
    signaling: ['ws://127.0.0.1:9'],
    env: {},
    cwd: dir,
  })),
  outcome: 'deployed',
  ...o,
});

beforeAll(async () => {
  mkdirSync(path.join(dir, 'config'));
  // Production passes the loader's production rules (TLS files, TURN with credentials); staging is lax.
  const cert = makeCert(dir, 'signaling', 30);
  writeFileSync(
    path.join(dir, 'config/webrtc-production.env'),
    [
      'SIGNALING_PORT=9443',
      `SIGNALING_TLS_CERT=${cert.cert}`,
      `SIGNALING_TLS_KEY=${cert.key}`,
      'TURN_SERVERS=turn:127.0.0.1:3478?transport=udp',
      'TURN_USERNAME=prod',
      'TURN_PASSWORD=prod-secret',
      '',
    ].join('\n'),
  );
  writeFileSync(path.join(dir, 'config/webrtc-staging.env'), 'SIGNALING_PORT=9543\n');
  await recordRelease(staging, release('stg-v1', '2026-01-01T00:00:00Z'));
  // Staging's canary of v2 with a change, promoted; and one of v3 that failed there.
  await recordRelease(
    staging,
    release('stg-canary-v2', '2026-01-02T00:00:00Z', {
      ref: 'v2',
      outcome: 'promoted',
      changes: { ICE_TRANSPORT_POLICY: 'relay' },
    }),
  );
  await recordRelease(
    staging,
    release('stg-canary-v3', '2026-01-03T00:00:00Z', { ref: 'v3', outcome: 'failed', changes: {} }),
    10,
    false,
  );
  await recordRelease(production, release('prod-v1', '2026-01-01T00:00:00Z'));
}, 30_000);
afterAll(() => cleanup());

const cli = (args: string[]) => run([...args, '--state-dir', root], { cwd: dir, env: {} });
const json = async (args: string[]) => {
  const r = await cli([...args, '--json']);
  return { code: r.code, stderr: r.stderr, out: r.stdout ? JSON.parse(r.stdout) : undefined };
};

describe('stages', () => {
  it("lists each stage's own releases, and the unnamed environment's (none) without --stage", async () => {
    const ids = async (stage: string[]) =>
      (await json(['releases', ...stage])).out.releases.map((r: { id: string }) => r.id);
    expect(await ids(['--stage', 'staging'])).toEqual(['stg-canary-v3', 'stg-canary-v2', 'stg-v1']);
    expect(await ids(['--stage', 'production'])).toEqual(['prod-v1']);
    expect(await ids([])).toEqual([]);
    const st = await cli(['status', '--stage', 'staging']);
    expect(st.stdout).toContain(`nothing is recorded in ${staging.root}`);
  });

  it("checks each stage's env file, production in production mode", async () => {
    const config = async (args: string[]) =>
      JSON.parse((await run(['config', 'check', ...args, '--json'], { cwd: dir, env: {} })).stdout);
    const check = (stage: string) => config(['--stage', stage]);
    expect(await check('staging')).toMatchObject({
      valid: true,
      file: 'config/webrtc-staging.env',
      production_mode: false,
      values: { SIGNALING_PORT: '9543' },
    });
    expect(await check('production')).toMatchObject({
      valid: true,
      file: 'config/webrtc-production.env',
      production_mode: true,
      sources: { PRODUCTION_MODE: '--stage production' },
    });
    // Without --stage the same default file is read as before: not in production mode.
    expect(await config([])).toMatchObject({ production_mode: false });
  });

  it('takes the release staging promoted, by its id: its ref and its --set changes', async () => {
    const r = await json(['canary', '--stage', 'production', '--release', 'stg-canary-v2', '--dry-run']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.out.plan).toMatchObject({
      stage: 'production',
      stable: { id: 'prod-v1' },
      candidate: { ref: 'v2', changes: { ICE_TRANSPORT_POLICY: 'relay' } },
      promotion: { stage: 'production', requires: 'staging', passed_as: 'stg-canary-v2', forced: false },
    });
    // Given by ref with the same change, it is the same release.
    const byRef = await json([
      'canary',
      '--stage',
      'production',
      '--label',
      'v2',
      '--set',
      'ICE_TRANSPORT_POLICY=relay',
      '--dry-run',
    ]);
    expect(byRef.out.plan.promotion.passed_as).toBe('stg-canary-v2');
    const human = await cli(['canary', '--stage', 'production', '--release', 'stg-canary-v2', '--dry-run']);
    expect(human.stdout).toContain('  stage      production; passed staging as stg-canary-v2');
    // A dry run: no canary state was written.
    expect(existsSync(production.canary)).toBe(false);
  });

  it('refuses a release staging did not promote, in one line that says what to do', async () => {
    for (const [args, why] of [
      [['--release', 'stg-canary-v3'], 'staging promoted stg-canary-v2 (v2), but ref v3 is not v2'],
      // The same ref with a change staging never ran.
      [['--label', 'v2'], 'staging promoted stg-canary-v2 (v2), but its --set ICE_TRANSPORT_POLICY differ'],
    ] as const) {
      const r = await cli(['canary', '--stage', 'production', ...args]);
      expect(r.code).toBe(2);
      const ref = args[1] === 'v2' ? 'v2' : 'v3';
      expect(r.stderr).toBe(
        `error: release ${ref} did not pass staging: ${why}\nhint: canary it there first (\`ifmesh canary --stage staging\` with the same --release and --set), then pass the promoted release's id to --release; --force promotes it anyway\n`,
      );
    }
    // Nothing was started or written in production.
    expect((await json(['releases', '--stage', 'production'])).out.releases).toHaveLength(1);
    expect((await cli(['canary', 'status', '--stage', 'production'])).code).toBe(2);
  });

  it('takes it anyway with --force, saying so in the plan', async () => {
    const r = await json(['canary', '--stage', 'production', '--label', 'v3', '--force', '--dry-run']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.out.plan.promotion).toMatchObject({ passed_as: null, forced: true });
    const human = await cli(['canary', '--stage', 'production', '--label', 'v3', '--force', '--dry-run']);
    expect(human.stdout).toContain('  stage      production; did not pass staging: promoted with --force');
  });

  it('has no promotion check outside production, and --force says it has nothing to lift there', async () => {
    const r = await json(['canary', '--stage', 'staging', '--label', 'v9', '--dry-run']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.out.plan).toMatchObject({ stage: 'staging', promotion: null, candidate: { ref: 'v9' } });
    const forced = await cli(['canary', '--stage', 'staging', '--force', '--dry-run']);
    expect(forced.code).toBe(2);
    expect(forced.stderr).toMatch(
      /^error: --force only lifts the promotion check of a gated stage\nhint: use it with --stage production\n$/,
    );
  });
});
