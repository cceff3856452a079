// Where a deploy listens and how it is reached (SIGNALING_HOST, TLS, SIGNALING_PUBLIC_URL), the
// nginx configuration it writes, and the CA file's errors: pure functions, no sockets.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadTrust } from '../../src/clients/tls-trust.js';
import { loadConfig } from '../../src/config/load.js';
import { nginxConfig } from '../../src/exec/nginx.js';
import { nginxTls, planEndpoints, SYSTEM_CA_BUNDLE } from '../../src/ops/deploy/endpoints.js';
import { tempDir } from '../helpers/cli.js';
import { makeCa, makeCert, makeServerCert } from '../helpers/tls.js';

const { dir, cleanup } = tempDir();
afterAll(cleanup);

const config = async (env: Record<string, string>) => (await loadConfig({ cwd: dir, env })).config;

describe('deploy endpoints', () => {
  it('binds SIGNALING_HOST (every address by default) and dials a wildcard on loopback', async () => {
    const e = planEndpoints(await config({}), undefined);
    expect(e).toMatchObject({ bind_host: '0.0.0.0', dial_host: '127.0.0.1', scheme: 'ws', tls: null });
    expect(e.server_name).toBe('_');
    const named = planEndpoints(await config({ SIGNALING_HOST: 'sig.example.com' }), undefined);
    expect(named).toMatchObject({ bind_host: 'sig.example.com', dial_host: 'sig.example.com' });
    expect(named.server_name).toBe('sig.example.com');
  });

  it('serves wss with the certificate, and names the public URL as server_name', async () => {
    const e = planEndpoints(
      await config({
        SIGNALING_HOST: '127.0.0.1',
        SIGNALING_TLS_CERT: '/etc/ifmesh/sig.crt',
        SIGNALING_TLS_KEY: '/etc/ifmesh/sig.key',
        SIGNALING_PUBLIC_URL: 'https://signaling.example.com:8440',
      }),
      '/etc/ifmesh/ca.crt',
    );
    expect(e).toMatchObject({
      scheme: 'wss',
      public_url: 'wss://signaling.example.com:8440',
      server_name: 'signaling.example.com',
      tls: { cert: '/etc/ifmesh/sig.crt', key: '/etc/ifmesh/sig.key', ca: '/etc/ifmesh/ca.crt' },
    });
    expect(nginxTls(e)).toEqual({
      cert: '/etc/ifmesh/sig.crt',
      key: '/etc/ifmesh/sig.key',
      trusted: '/etc/ifmesh/ca.crt',
      upstreamName: 'signaling.example.com',
    });
    expect(nginxTls({ ...e, tls: { ...e.tls!, ca: null } })?.trusted).toBe(SYSTEM_CA_BUNDLE);
  });

  it('verifies the instances by a DNS name of the certificate when the public URL is an address', async () => {
    const named = makeCert(dir, 'ip-and-dns', 30, 'IP:127.0.0.1,DNS:localhost');
    const bare = makeServerCert(dir, makeCa(dir, 'endpoints-ca'), 'ip-only', ['127.0.0.1']);
    // no subjectAltName at all: OpenSSL, and so nginx, match the subject's CN
    const cnOnly = makeCert(dir, 'cn-only', 30);
    const at = async (c: { cert: string; key: string }) =>
      planEndpoints(
        await config({
          SIGNALING_HOST: '127.0.0.1',
          SIGNALING_TLS_CERT: c.cert,
          SIGNALING_TLS_KEY: c.key,
          SIGNALING_PUBLIC_URL: 'wss://127.0.0.1:19440',
        }),
        undefined,
      );
    // nginx matched "127.0.0.1" against DNS names only: every request through it failed (502).
    expect(nginxTls(await at(named))?.upstreamName).toBe('localhost');
    expect(nginxTls(await at(cnOnly))?.upstreamName).toBe('cn-only.test');
    const e = await at(bare);
    expect(() => nginxTls(e)).toThrow(
      `nginx verifies the instances' certificate by DNS name only, and ${bare.cert} names 127.0.0.1, an address, and no DNS name`,
    );
  });

  it('refuses a certificate without its key, naming the missing key and the fix', async () => {
    const c = await config({ SIGNALING_TLS_CERT: '/etc/ifmesh/sig.crt' });
    expect(() => planEndpoints(c, undefined)).toThrow(
      'SIGNALING_TLS_KEY: is empty while SIGNALING_TLS_CERT is set: TLS needs both',
    );
  });

  it('refuses a public URL that is not a signaling URL', async () => {
    await expect(config({ SIGNALING_PUBLIC_URL: 'ftp://x' })).rejects.toThrow('is not a signaling URL');
  });
});

describe('nginx configuration', () => {
  const base = { prefix: '/srv/state/nginx', listenPort: 8440, upstreams: [8443, 8444] };

  it('plain: listens on loopback by default, /health proxied, the runbook timeouts', () => {
    const conf = nginxConfig(base);
    expect(conf).toContain('listen 127.0.0.1:8440;');
    expect(conf).toContain('server_name _;');
    expect(conf).toContain('location = /health {');
    expect(conf).toContain('proxy_pass http://ifmesh_signaling;');
    for (const t of ['proxy_connect_timeout 5s;', 'proxy_read_timeout 3600s;', 'proxy_send_timeout 3600s;'])
      expect(conf).toContain(t);
    expect(conf).not.toContain('ssl');
  });

  it('TLS: listen … ssl on the configured address, the certificate, verified upstreams', () => {
    const conf = nginxConfig({
      ...base,
      listenHost: '0.0.0.0',
      upstreamHost: '10.0.0.5',
      serverName: 'signaling.example.com',
      tls: { cert: '/c.crt', key: '/c.key', trusted: '/ca.crt', upstreamName: 'signaling.example.com' },
    });
    expect(conf).toContain('listen 8440 ssl;');
    expect(conf).toContain('server_name signaling.example.com;');
    expect(conf).toContain('ssl_certificate /c.crt;');
    expect(conf).toContain('ssl_certificate_key /c.key;');
    expect(conf).toContain('server 10.0.0.5:8443 max_fails=3 fail_timeout=30s;');
    expect(conf).toContain('proxy_pass https://ifmesh_signaling;');
    expect(conf).toContain('proxy_ssl_verify on;');
    expect(conf).toContain('proxy_ssl_trusted_certificate /ca.crt;');
    expect(conf).toContain('proxy_ssl_name signaling.example.com;');
    expect(nginxConfig({ ...base, listenHost: '::1' })).toContain('listen [::1]:8440;');
  });
});

describe('CA file', () => {
  it('is a configuration issue when IFMESH_CA_FILE does not exist', async () => {
    await expect(config({ IFMESH_CA_FILE: 'missing-ca.crt' })).rejects.toThrow(
      `IFMESH_CA_FILE: ${path.join(dir, 'missing-ca.crt')} does not exist; point it at the PEM file of your CA`,
    );
  });

  it('names the source and the fix for a missing file or one without a certificate', () => {
    expect(() => loadTrust('nope.crt', dir, '--ca')).toThrow(
      `--ca ${path.join(dir, 'nope.crt')} does not exist`,
    );
    writeFileSync(
      path.join(dir, 'key.pem'),
      '-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n',
    );
    expect(() => loadTrust('key.pem', dir, 'IFMESH_CA_FILE')).toThrow('holds no PEM certificate');
  });
});
