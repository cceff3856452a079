// Issue 19, point 3: a stage is an environment. Its name is checked, it selects its env file and its
// own state directory, production implies production mode, and what makes two releases "the same"
// across stages is decided in one place. Without --stage everything resolves exactly as before.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchEnv, loadConfig } from '../../src/config/load.js';
import { configReport } from '../../src/config/report.js';
import { parseStage, stageEnvFile, stageStateDir } from '../../src/config/stage.js';
import { type Release, recordRelease } from '../../src/ops/deploy/releases.js';
import { checkPromotion, releaseDifference, sameRelease } from '../../src/ops/rollout/promotion.js';
import { openStateDir, resolveStateDir } from '../../src/state/state-dir.js';
import { run, tempDir } from '../helpers/cli.js';

let dir: string;
let cleanup: () => void;
beforeAll(() => {
  ({ dir, cleanup } = tempDir());
  mkdirSync(path.join(dir, 'config'));
  writeFileSync(path.join(dir, 'config/webrtc-production.env'), 'SIGNALING_PORT=9001\n');
  writeFileSync(path.join(dir, 'config/webrtc-staging.env'), 'SIGNALING_PORT=9002\n');
  writeFileSync(path.join(dir, 'other.env'), 'SIGNALING_PORT=9003\n');
});
afterAll(() => cleanup());

describe('stage names', () => {
  it('accepts lower-case names that start with a letter, up to 32 characters', () => {
    for (const ok of ['staging', 'production', 'qa-2', 'a', 'e'.repeat(32)]) expect(parseStage(ok)).toBe(ok);
  });

  it('refuses anything else with a usage error (exit 2) saying what a name may be', () => {
    for (const bad of ['', 'Staging', '2prod', '-x', 'a'.repeat(33), '../prod', 'st/ag', 'prod env', 'é']) {
      expect(() => parseStage(bad), bad).toThrowError(expect.objectContaining({ exitCode: 2 }));
    }
    expect(() => parseStage('../prod')).toThrowError(/"\.\.\/prod" is not a stage name/);
  });

  it('is checked on the command line: a bad name exits 2 with one line and its fix', async () => {
    const r = await run(['status', '--stage', 'Prod/../x', '--state-dir', path.join(dir, 's')], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^error: --stage "Prod\/\.\.\/x" is not a stage name\nhint: use 1-32 lower-case/,
    );
  });
});

describe('stage resolution', () => {
  it("names the stage's env file and its state directory under the state root", () => {
    expect(stageEnvFile('staging')).toBe(path.join('config', 'webrtc-staging.env'));
    expect(stageStateDir('/srv/ifmesh', 'staging')).toBe('/srv/ifmesh/stages/staging');
    expect(stageStateDir('/srv/ifmesh', undefined)).toBe('/srv/ifmesh');
  });

  it('keeps the state root of --state-dir, $IFMESH_STATE_DIR or .ifmesh, and without --stage is that root', () => {
    const env = { IFMESH_STATE_DIR: 'from-env' };
    expect(resolveStateDir('/w', {})).toBe('/w/.ifmesh');
    expect(resolveStateDir('/w', env)).toBe('/w/from-env');
    expect(resolveStateDir('/w', env, 'flag')).toBe('/w/flag');
    expect(resolveStateDir('/w', {}, undefined, 'staging')).toBe('/w/.ifmesh/stages/staging');
    expect(resolveStateDir('/w', env, undefined, 'production')).toBe('/w/from-env/stages/production');
    expect(resolveStateDir('/w', env, '/abs', 'qa')).toBe('/abs/stages/qa');
  });

  it("reads the stage's env file before $IFMESH_CONFIG and the default; --config still wins", async () => {
    const env = { IFMESH_CONFIG: 'other.env' };
    const none = await loadConfig({ cwd: dir, env: {} });
    expect([none.file, none.config.signalingPort, none.stage]).toEqual([
      'config/webrtc-production.env',
      9001,
      undefined,
    ]);
    expect((await loadConfig({ cwd: dir, env })).config.signalingPort).toBe(9003);
    const staging = await loadConfig({ cwd: dir, env, stage: 'staging' });
    expect([staging.file, staging.config.signalingPort, staging.stage]).toEqual([
      'config/webrtc-staging.env',
      9002,
      'staging',
    ]);
    expect(staging.config.productionMode).toBe(false);
    const explicit = await loadConfig({ cwd: dir, env, stage: 'staging', file: 'other.env' });
    expect(explicit.config.signalingPort).toBe(9003);
  });

  it('refuses a stage whose env file does not exist, naming the file to create', async () => {
    const err = await loadConfig({ cwd: dir, env: {}, stage: 'qa' }).catch((e) => e);
    expect(err.exitCode).toBe(2);
    expect(err.message).toMatch(
      /^config\/webrtc-qa\.env: file does not exist; create config\/webrtc-qa\.env, stage qa's env file .*or pass --config FILE$/,
    );
  });

  it('runs --stage production in production mode, also for the services it launches', async () => {
    const loaded = await loadConfig({ cwd: dir, env: {}, stage: 'production', productionRules: 'report' });
    expect(loaded.config.productionMode).toBe(true);
    expect(configReport(loaded).sources.PRODUCTION_MODE).toBe('--stage production');
    // The rules apply: this file has no TLS, no TURN; they are reported (enforced by default).
    expect(loaded.productionIssues.map((i) => i.key)).toEqual(
      expect.arrayContaining(['SIGNALING_TLS_CERT', 'TURN_SERVERS']),
    );
    await expect(loadConfig({ cwd: dir, env: {}, stage: 'production' })).rejects.toThrow(
      /SIGNALING_TLS_CERT: is required when PRODUCTION_MODE=true/,
    );
    expect(launchEnv({}, loaded)).toMatchObject({ PRODUCTION_MODE: 'true' });
    // Not without the stage, nor for another one.
    expect(launchEnv({}, await loadConfig({ cwd: dir, env: {} })).PRODUCTION_MODE).toBeUndefined();
  });

  it('refuses PRODUCTION_MODE=false under --stage production, wherever it is set', async () => {
    for (const o of [
      {
        env: { PRODUCTION_MODE: 'false' },
        where: /^environment: PRODUCTION_MODE: is "false", but --stage production/,
      },
      { env: {}, flags: { PRODUCTION_MODE: 'false' }, where: /^--set: PRODUCTION_MODE: is "false"/ },
    ]) {
      const err = await loadConfig({ cwd: dir, stage: 'production', ...o }).catch((e) => e);
      expect(err.exitCode).toBe(2);
      expect(err.issues[0].fix).toMatch(/set PRODUCTION_MODE=true/);
      expect(err.message).toMatch(o.where);
    }
  });
});

describe('the same release', () => {
  const v2 = { ref: 'v2', changes: { ICE_TRANSPORT_POLICY: 'relay', TURN_PASSWORD: '[redacted]' } };

  it('is the same ref (or integrity, when both have one) with the same --set changes', () => {
    expect(sameRelease(v2, { ...v2, changes: { ...v2.changes } })).toBe(true);
    expect(releaseDifference(v2, { ...v2, ref: 'v3' })).toBe('ref v3 is not v2');
    expect(releaseDifference(v2, { ...v2, changes: { TURN_PASSWORD: '[redacted]' } })).toBe(
      'its --set ICE_TRANSPORT_POLICY differ',
    );
    expect(releaseDifference(v2, { ...v2, changes: { ICE_TRANSPORT_POLICY: 'relay' } })).toBe(
      'its --set TURN_PASSWORD (secret) differ',
    );
    expect(releaseDifference({ ref: 'v2' }, v2)).toBe('its configuration changes were not recorded');
    // Integrity decides over the ref, which is only a name for the bytes.
    const a = { ...v2, integrity: 'sha512-aaa' };
    expect(sameRelease(a, { ...a, ref: './ifmesh-2.0.0.tgz' })).toBe(true);
    expect(releaseDifference(a, { ...a, integrity: 'sha512-bbb' })).toMatch(/integrity sha512-bbb is not/);
  });

  it('must have been promoted in staging for production, unless forced', async () => {
    const staging = openStateDir(path.join(dir, 'promo/stages/staging'));
    const rec = (id: string, o: Partial<Release>): Release => ({
      id,
      deployment_id: id,
      ref: 'v2',
      config_hash: 'h',
      created_at: `2026-01-0${id.length}T00:00:00Z`,
      processes: [],
      agents: [],
      ...o,
    });
    const input = { stage: 'production', gateState: staging, force: false };
    await expect(checkPromotion(v2, input)).rejects.toThrow(
      /^release v2 did not pass staging: no canary has promoted a release in staging$/,
    );
    await recordRelease(staging, rec('c-failed', { outcome: 'failed', changes: v2.changes }));
    await recordRelease(staging, rec('c-ok', { outcome: 'promoted', changes: v2.changes }));
    expect(await checkPromotion(v2, input)).toEqual({
      stage: 'production',
      requires: 'staging',
      passed_as: 'c-ok',
      forced: false,
    });
    const err = await checkPromotion({ ...v2, ref: 'v3' }, input).catch((e) => e);
    expect([err.code, err.exitCode]).toEqual(['promotion_refused', 2]);
    expect(err.message).toBe(
      'release v3 did not pass staging: staging promoted c-ok (v2), but ref v3 is not v2',
    );
    expect(err.hint).toMatch(
      /^canary it there first \(`ifmesh canary --stage staging` with the same --release and --set\).*--force/,
    );
    expect(await checkPromotion({ ...v2, ref: 'v3' }, { ...input, force: true })).toMatchObject({
      passed_as: null,
      forced: true,
    });
  });
});
