import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { fixtureDir, run, tempDir } from '../helpers/cli.js';

let dir: string;
let cleanup: () => void;
beforeAll(() => {
  ({ dir, cleanup } = fixtureDir());
});
afterAll(() => cleanup());

const B = 'fixtures/config/broken';

// Each broken fixture differs from a valid config in one line; the error must say where and how to fix it.
const broken: Array<[string, string]> = [
  [
    'bad-port',
    `${B}/bad-port.env:3: SIGNALING_PORT: "99999" is not a port number (1-65535); set it to e.g. 8443`,
  ],
  [
    'timeout-with-units',
    `${B}/timeout-with-units.env:10: TURN_FALLBACK_TIMEOUT_MS: "5s" is not a whole number of milliseconds; set it to e.g. 5000 (no units)`,
  ],
  ['bad-bool', `${B}/bad-bool.env:12: PRODUCTION_MODE: "yes" is not true or false; set it to true or false`],
  [
    'bad-ice-policy',
    `${B}/bad-ice-policy.env:13: ICE_TRANSPORT_POLICY: "any" is not a valid ICE transport policy; use "all" (direct and relay) or "relay" (relay only)`,
  ],
  [
    'stun-wrong-scheme',
    `${B}/stun-wrong-scheme.env:6: STUN_SERVERS: "http://stun.example.com:3478" must start with stun: or stuns:; write each as stun:host:port, separated by commas`,
  ],
  [
    'turn-bad-transport',
    `${B}/turn-bad-transport.env:7: TURN_SERVERS: "turn:127.0.0.1:3478?transport=sctp": the only query allowed is ?transport=udp or ?transport=tcp; write each as turn:host:port?transport=udp, separated by commas`,
  ],
  [
    'turn-credentials-in-url',
    `${B}/turn-credentials-in-url.env:7: TURN_SERVERS: a turn: URL takes no user, password or "//" (RFC 7064/7065); put credentials in TURN_USERNAME/TURN_PASSWORD; write each as turn:host:port?transport=udp, separated by commas`,
  ],
  [
    'witness-not-http',
    `${B}/witness-not-http.env:20: IF_WITNESS_ENDPOINT: "ftp://witness.local/api/log" must be an http:// or https:// URL; use http://host:port or https://host`,
  ],
  [
    'malformed-line',
    `${B}/malformed-line.env:3: line is not KEY=VALUE; write it as KEY=VALUE (no spaces around =) or comment it out with #`,
  ],
  [
    'duplicate-key',
    `${B}/duplicate-key.env:11: TURN_FALLBACK_TIMEOUT_MS: is set twice (first on line 10); keep one of the two lines`,
  ],
  [
    'unterminated-quote',
    `${B}/unterminated-quote.env:9: TURN_PASSWORD: has an unterminated double quote; close the quote with "`,
  ],
  [
    'unquoted-space',
    `${B}/unquoted-space.env:21: IF_WITNESS_API_KEY: has an unquoted value with spaces; wrap the value in double quotes`,
  ],
  [
    'bad-email',
    `${B}/bad-email.env:34: ALERT_EMAIL: "ops-team" is not an e-mail address; use e.g. ops-team@example.com`,
  ],
  [
    'prod-self-signed',
    `${B}/prod-self-signed.env:21: ALLOW_SELF_SIGNED_CERTS: must be false when PRODUCTION_MODE=true; set ALLOW_SELF_SIGNED_CERTS=false`,
  ],
  [
    'prod-cert-validation-off',
    `${B}/prod-cert-validation-off.env:22: ENABLE_CERT_VALIDATION: must be true when PRODUCTION_MODE=true; set ENABLE_CERT_VALIDATION=true`,
  ],
  [
    'prod-missing-cert',
    `${B}/prod-missing-cert.env:5: SIGNALING_TLS_CERT: <dir>/fixtures/tls/missing-cert.pem does not exist; point it at an existing, readable PEM file`,
  ],
  [
    'prod-no-turn',
    `${B}/prod-no-turn.env:13: TURN_SERVERS: needs at least one TURN server when PRODUCTION_MODE=true; set TURN_SERVERS=turn:host:3478?transport=udp`,
  ],
  [
    'prod-no-turn-password',
    `${B}/prod-no-turn-password.env:15: TURN_PASSWORD: is required when PRODUCTION_MODE=true; set TURN_PASSWORD to the TURN credential`,
  ],
  [
    'prod-placeholder-username',
    `${B}/prod-placeholder-username.env:14: TURN_USERNAME: is still the template placeholder; set TURN_USERNAME to the real TURN credential`,
  ],
];

describe('config check on broken configs', () => {
  it.each(broken)('%s: exit 2 with the exact error', async (name, expected) => {
    const r = await run(['config', 'check', '--config', `${B}/${name}.env`], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('error: '));
    expect(errors).toEqual([`error: ${expected.replace('<dir>', dir)}`]);
  });

  it('never prints a secret, even when the secret is what is broken', async () => {
    for (const name of ['unterminated-quote', 'turn-credentials-in-url']) {
      const r = await run(['config', 'check', '--json', '--config', `${B}/${name}.env`], { cwd: dir });
      expect(r.stdout + r.stderr).not.toContain('hunter2');
    }
  });

  it('reports every problem at once, as one JSON error document with --json', async () => {
    const file = path.join(dir, 'two-problems.env');
    writeFileSync(file, 'SIGNALING_PORT=0\nPRODUCTION_MODE=maybe\n');
    const r = await run(['config', 'check', '--json', '--config', file], { cwd: dir });
    expect(r.code).toBe(2);
    const doc = JSON.parse(r.stdout);
    expect(doc.error.code).toBe('config_invalid');
    expect(doc.error.issues.map((i: { key: string; line: number }) => [i.key, i.line])).toEqual([
      ['SIGNALING_PORT', 1],
      ['PRODUCTION_MODE', 2],
    ]);
  });

  it('fails with exit 2 when --config names a file that does not exist', async () => {
    const r = await run(['config', 'check', '--config', 'nope.env'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('error: nope.env: file does not exist;');
    expect(r.stderr).toContain('create config/webrtc-production.env');
  });

  it('does not advise creating the default env file when it is there', async () => {
    const t = tempDir();
    try {
      mkdirSync(path.join(t.dir, 'config'), { recursive: true });
      writeFileSync(path.join(t.dir, 'config', 'webrtc-production.env'), 'SIGNALING_PORT=8443\n');
      const r = await run(['config', 'check', '--config', 'nope.env'], { cwd: t.dir });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('check the path, or drop --config to read config/webrtc-production.env');
      expect(r.stderr).not.toContain('create config/webrtc-production.env');
    } finally {
      t.cleanup();
    }
  });
});

describe('valid configs', () => {
  it('accepts the bundled development and production configs', async () => {
    for (const name of ['development', 'production']) {
      const r = await run(['config', 'check', '--config', `fixtures/config/${name}.env`], { cwd: dir });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
    }
  });

  it('resolves TLS paths relative to the env file and strips /api/log from the witness endpoint', async () => {
    const loaded = await loadConfig({ cwd: dir, env: {}, file: 'fixtures/config/production.env' });
    expect(loaded.config.signalingTlsCert).toBe(path.join(dir, 'fixtures/tls/test-cert.pem'));
    expect(loaded.config.witnessUrl).toBe('https://witness.infrafabric.local');
    expect(loaded.config.turnServers.map((t) => [t.host, t.port, t.transport])).toEqual([
      ['turn1.example.com', 3478, 'udp'],
      ['turn2.example.com', 3478, 'tcp'],
    ]);
  });

  it('uses the runbook defaults when there is no file', async () => {
    const loaded = await loadConfig({ cwd: dir, env: {} });
    expect(loaded.file).toBeUndefined();
    expect(loaded.config.signalingPort).toBe(8443);
    expect(loaded.config.turnFallbackTimeoutMs).toBe(5000);
    expect(loaded.config.srtpKeyRotationIntervalMs).toBe(86_400_000);
    expect(loaded.config.stunServers.map((s) => s.url)).toEqual([
      'stun:stun.l.google.com:19302',
      'stun:stun1.l.google.com:19302',
    ]);
    expect(Object.values(loaded.sources).every((s) => s.kind === 'default')).toBe(true);
  });

  it('applies flag > environment > file > default', async () => {
    const file = 'fixtures/config/development.env';
    const fromFile = await loadConfig({ cwd: dir, env: {}, file });
    expect(fromFile.config.signalingPort).toBe(8443);
    expect(fromFile.sources.SIGNALING_PORT).toEqual({ kind: 'file', file, line: 3 });
    const fromEnv = await loadConfig({ cwd: dir, env: { SIGNALING_PORT: '9000' }, file });
    expect(fromEnv.config.signalingPort).toBe(9000);
    const fromFlag = await loadConfig({
      cwd: dir,
      env: { SIGNALING_PORT: '9000' },
      file,
      flags: { SIGNALING_PORT: '9100' },
    });
    expect(fromFlag.config.signalingPort).toBe(9100);
    expect(fromFlag.sources.SIGNALING_PORT).toEqual({ kind: 'flag' });
    expect(fromFlag.sources.ALERT_EMAIL).toEqual({ kind: 'default' });
  });

  it('names the environment as the source of a bad value from it', async () => {
    await expect(loadConfig({ cwd: dir, env: { SIGNALING_PORT: 'http' } })).rejects.toThrow(
      'environment: SIGNALING_PORT: "http" is not a port number',
    );
  });

  it('warns about unknown keys in the file, with a suggestion, and refuses unknown --set keys', async () => {
    const file = path.join(dir, 'typo.env');
    writeFileSync(file, 'SIGNALING_PROT=9000\n');
    const loaded = await loadConfig({ cwd: dir, env: {}, file });
    expect(loaded.warnings).toEqual([
      'typo.env:1: unknown key SIGNALING_PROT (did you mean SIGNALING_PORT?); it is ignored',
    ]);
    const r = await run(['config', 'check', '--config', file, '--set', 'TURN_PASWORD=x'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('warning: typo.env:1: unknown key SIGNALING_PROT');
    expect(r.stderr).toContain(
      'error: --set: TURN_PASWORD: is not a configuration key; did you mean TURN_PASSWORD?',
    );
  });

  it('reads the runbook template syntax: export, quotes, inline comments', async () => {
    const file = path.join(dir, 'syntax.env');
    writeFileSync(
      file,
      [
        '# comment',
        'export SIGNALING_PORT=9443',
        `ALERT_EMAIL='ops@example.com'   # single quotes`,
        'TURN_USERNAME="mesh user"',
        'ICE_TRANSPORT_POLICY=relay        # "all" for dev, "relay" for high-security',
        'SRTP_KEY_ROTATION_INTERVAL_MS=86400000  # 24 hours',
        '',
      ].join('\r\n'),
    );
    const { config } = await loadConfig({ cwd: dir, env: {}, file });
    expect(config.signalingPort).toBe(9443);
    expect(config.alertEmail).toBe('ops@example.com');
    expect(config.turnUsername).toBe('mesh user');
    expect(config.iceTransportPolicy).toBe('relay');
  });

  it('throws a ConfigError carrying every issue for programmatic callers', async () => {
    const err = await loadConfig({ cwd: dir, env: { SIGNALING_PORT: 'x', ALERT_EMAIL: 'y' } }).catch(
      (e) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).issues.map((i) => i.key)).toEqual(['SIGNALING_PORT', 'ALERT_EMAIL']);
  });
});

describe('config show', () => {
  const secrets = ['s3cret-turn-Pa55', 'wk_live_4f9a1c2e7b', 'pd_int_0c1d2e3f', 'admin-t0ken'];

  it('redacts every secret in text and JSON output', async () => {
    const env = { SIGNALING_ADMIN_TOKEN: 'admin-t0ken' };
    for (const argv of [
      ['config', 'show'],
      ['config', 'show', '--json'],
      ['config', 'check', '--json'],
    ]) {
      const r = await run([...argv, '--config', 'fixtures/config/production.env'], { cwd: dir, env });
      expect(r.code).toBe(0);
      for (const s of secrets) expect(r.stdout + r.stderr).not.toContain(s);
    }
    const doc = JSON.parse(
      (
        await run(['config', 'show', '--json', '--config', 'fixtures/config/production.env'], {
          cwd: dir,
          env,
        })
      ).stdout,
    );
    expect(doc.values.TURN_PASSWORD).toBe('<redacted>');
    expect(doc.values.SIGNALING_ADMIN_TOKEN).toBe('<redacted>');
    expect(doc.values.ALERT_EMAIL).toBe('ops-team@example.com');
    expect(doc.sources.TURN_PASSWORD).toBe('fixtures/config/production.env:15');
    expect(doc.sources.SIGNALING_ADMIN_TOKEN).toBe('environment');
  });

  it('redacts credentials inside URLs', async () => {
    const r = await run(['config', 'show', '--json'], {
      cwd: dir,
      env: { IF_WITNESS_ENDPOINT: 'https://user:pw-secret@w.example/api/log' },
    });
    expect(r.stdout).not.toContain('pw-secret');
    expect(JSON.parse(r.stdout).values.IF_WITNESS_ENDPOINT).toBe('https://<redacted>@w.example/api/log');
  });
});
