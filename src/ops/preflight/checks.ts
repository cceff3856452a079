// The checklist: the runbook's seven pre-flight checks (dependencies, configuration, port, TLS files,
// witness, build and sanity in one line) and what they leave out (Node, TLS validity and key, the
// production rules of production.ts). The network checks (witness key, STUN, TURN) are in remote.ts.
import { X509Certificate } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { packageRoot } from '../../paths.js';
import { scanProcesses } from '../../state/processes.js';
import { formatDuration } from '../../ui/units.js';
import {
  certificateWindow,
  fleetTrust,
  fleetTrustProblems,
  keyMatchesCertificate,
  readCertificateChain,
} from '../certs/check.js';
import { Supervisor } from '../fleet/supervisor.js';
import type { SelftestReport } from '../selftest.js';
import { type ProductionFinding, TLS_FILES } from './production.js';
import { stunCheck, turnCheck, witnessCheck } from './remote.js';
import {
  type CheckOutcome,
  fail,
  NO_CONFIG,
  ok,
  type PreflightCheck,
  type PreflightEnv,
  warn,
} from './types.js';

const DAY_MS = 86_400_000;
/** Packages whose root module is not importable by design: the entry point ifmesh uses. */
const ENTRY_POINTS: Record<string, string> = { '@noble/hashes': '@noble/hashes/sha2.js' };
const CERT_MIN_DAYS = 7;
const MIN_NODE: [number, number] = [20, 19];
const SELFTEST_TIMEOUT_MS = 25_000;

export const nodeCheck: PreflightCheck = {
  name: 'Node.js version',
  timeoutMs: 1_000,
  run: async ({ nodeVersion }) => {
    const [major = 0, minor = 0] = nodeVersion.split('.').map(Number);
    const good = major > MIN_NODE[0] || (major === MIN_NODE[0] && minor >= MIN_NODE[1]);
    return good
      ? ok(`v${nodeVersion}`)
      : fail(
          `v${nodeVersion} is older than ${MIN_NODE.join('.')}`,
          'install Node.js 20.19 or newer (nvm install 20)',
        );
  },
};

/** Where Node would find `name` from `root`: node_modules in root or any parent. */
function locatePackage(root: string, name: string): string | undefined {
  for (let dir = root; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name, 'package.json');
    if (existsSync(candidate)) return path.dirname(candidate);
    if (path.dirname(dir) === dir) return undefined;
  }
}

export const dependenciesCheck: PreflightCheck = {
  name: 'dependencies',
  // Loading every package (werift, ink, better-sqlite3 …) runs beside the build check's selftest: on a
  // busy host that takes several seconds, and a budget that trips there is a false alarm.
  timeoutMs: 30_000,
  run: async ({ root, ctx }) => {
    const pkg = JSON.parse(await fs.readFile(path.join(root, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
    };
    const names = Object.keys(pkg.dependencies ?? {});
    const missing = names.filter((n) => !locatePackage(root, n));
    if (missing.length) return fail(`missing npm packages: ${missing.join(', ')}`, `run npm ci in ${root}`);
    // Present is not enough: this installation's packages must load on this Node (a native binding
    // built for another ABI, a half-extracted package). Only the running package's own can be loaded.
    if (root === packageRoot()) {
      for (const name of names) {
        try {
          await import(ENTRY_POINTS[name] ?? name);
        } catch (err) {
          return fail(
            `${name} does not load: ${(err as Error).message.split('\n')[0]}`,
            `run npm rebuild ${name} (or npm ci) in ${root}`,
          );
        }
      }
      try {
        const { default: Database } = await import('better-sqlite3');
        new Database(':memory:').close();
      } catch (err) {
        return fail(
          `better-sqlite3 cannot open a database: ${(err as Error).message.split('\n')[0]}`,
          'run npm rebuild better-sqlite3',
        );
      }
    }
    // The local stack runs coturn and nginx when installed; without them it runs degraded.
    const binaries = [
      ['turnserver', 'coturn'],
      ['nginx', 'nginx'],
      ['openssl', 'openssl'],
    ];
    const absent: string[] = [];
    for (const [bin, deb] of binaries) {
      const r = await ctx.exec('/bin/sh', ['-c', 'command -v "$1"', 'sh', bin!], {
        timeoutMs: 5_000,
        env: { PATH: ctx.env.PATH ?? '' },
      });
      if (r.code !== 0) absent.push(`${bin} (Debian package ${deb})`);
    }
    if (absent.length)
      return warn(
        `${names.length} npm packages present; not on PATH: ${absent.join(', ')}`,
        'apt-get install the named packages, or run without them (the local stack skips coturn/nginx)',
      );
    return ok(`${names.length} npm packages load; turnserver, nginx and openssl on PATH`);
  },
};

export const configCheck: PreflightCheck = {
  name: 'configuration',
  timeoutMs: 1_000,
  run: async ({ loaded, configError }) => {
    if (configError)
      return fail(
        `${configError.message}`,
        `run ifmesh config check${loaded?.file ? ` --config ${loaded.file}` : ''} for every problem`,
      );
    if (!loaded) return fail('not loaded', 'run ifmesh config check');
    const where = loaded.file ?? 'defaults and environment (no env file)';
    const mode = loaded.config.productionMode ? 'production' : 'development';
    return loaded.warnings.length
      ? warn(`${where}: ${loaded.warnings[0]}`, 'run ifmesh config check')
      : ok(`${where} (${mode} mode)`);
  },
};

export const portCheck: PreflightCheck = {
  name: 'signaling port free',
  timeoutMs: 3_000,
  run: async ({ loaded, state, ctx }) => {
    if (!loaded) return NO_CONFIG;
    const { signalingHost: host, signalingPort: port } = loaded.config;
    const err = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
      const s = createServer();
      s.once('error', (e) => resolve(e));
      s.listen(port, host, () => s.close(() => resolve(undefined)));
    });
    if (!err) return ok(`${host}:${port}`);
    if (err.code === 'EADDRINUSE') {
      // This fleet's own instance holds it (preflight on a running fleet): a redeploy replaces it.
      const sup = new Supervisor(state, { clock: ctx.clock, owner: 'preflight' });
      const own = scanProcesses(state).records.find(
        (r) => r.role === 'signaling' && r.port === port && sup.running(r.name) !== undefined,
      );
      if (own)
        return ok(`${host}:${port} is held by ${own.name}, this fleet's instance (a deploy replaces it)`);
      return fail(
        `${host}:${port} is already in use`,
        `stop what listens there (ss -ltnp 'sport = :${port}') or set SIGNALING_PORT`,
      );
    }
    return fail(
      `cannot listen on ${host}:${port}: ${err.code ?? err.message}`,
      'check SIGNALING_HOST and SIGNALING_PORT',
    );
  },
};

export const tlsCheck: PreflightCheck = {
  name: 'TLS certificate and key',
  timeoutMs: 3_000,
  run: async ({ loaded, production, ctx }) => {
    if (!loaded || !production) return NO_CONFIG;
    const { signalingTlsCert: certFile, signalingTlsKey: keyFile, productionMode } = loaded.config;
    // The production rule on TLS files is this line's first half: only unset files are a mere
    // warning outside production mode (configured but unreadable ones would stop signaling).
    const files = production.find((f) => f.check === TLS_FILES);
    if (files && !files.ok)
      return productionMode || certFile || keyFile
        ? fail(files.detail, files.fix)
        : warn(files.detail, files.fix);
    if (!certFile || !keyFile) return NO_CONFIG;
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(await fs.readFile(certFile));
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      return fail(
        e.code ? `${certFile}: ${e.code}` : `${certFile} is not a PEM certificate`,
        'point SIGNALING_TLS_CERT at a readable PEM certificate',
      );
    }
    let keyMatches: boolean;
    try {
      keyMatches = keyMatchesCertificate(cert, await fs.readFile(keyFile));
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      return fail(
        e.code ? `${keyFile}: ${e.code}` : `${keyFile} is not a PEM private key`,
        'point SIGNALING_TLS_KEY at a readable PEM private key',
      );
    }
    if (!keyMatches)
      return fail(
        `${keyFile} is not the key of ${certFile}`,
        'install the key the certificate was issued for (or reissue the certificate)',
      );
    const now = ctx.clock.now();
    const { notBefore: from, notAfter: to, daysLeft: days } = certificateWindow(cert, now);
    if (now < from)
      return fail(`not valid before ${cert.validFrom}`, 'check the clock, or use a certificate valid now');
    if (now >= to) return fail(`expired on ${cert.validTo}`, 'renew the certificate');
    if (to - now < CERT_MIN_DAYS * DAY_MS)
      return fail(
        `expires in ${days} day(s), on ${cert.validTo}`,
        `renew it: at least ${CERT_MIN_DAYS} days must remain`,
      );
    // A fleet with a CA of its own: one it did not issue, or one that names none of the hosts its
    // clients dial, would be refused by every agent once deployed.
    const caFile =
      ctx.tls?.caFile ?? (loaded.config.caFile ? path.resolve(ctx.cwd, loaded.config.caFile) : undefined);
    const trust = fleetTrust(loaded.config, caFile, certFile);
    const refused = trust ? fleetTrustProblems(readCertificateChain(certFile), trust) : [];
    if (refused.length)
      return fail(
        refused.join('; '),
        'install a certificate the CA issued for those hosts (ifmesh certs check shows what it names)',
      );
    return ok(
      `${cert.subject.replace(/\n/g, ', ')}, valid ${days} more days, key matches${trust?.caFile ? `, issued by ${trust.caFile}` : ''}`,
    );
  },
};

/** What a production rule means on preflight's checklist: ✗ in production mode, ! otherwise. */
export function productionCheck(f: ProductionFinding, productionMode: boolean): PreflightCheck {
  return {
    name: `production: ${f.check}`,
    timeoutMs: 1_000,
    run: async () => {
      if (f.ok) return ok(f.detail);
      return productionMode
        ? fail(f.detail, f.fix)
        : warn(`${f.detail} (a ✗ when PRODUCTION_MODE=true)`, f.fix);
    },
  };
}

/**
 * The build, proven by running it: the binary deploy would start (`node <root>/<bin>`) runs its
 * own `selftest`, which is also the runbook's sanity check. A file that exists but does not start
 * (a half-built dist/, a missing dependency) fails here rather than at deploy.
 */
export const buildCheck: PreflightCheck = {
  name: 'build and sanity (selftest of the built binary)',
  timeoutMs: 30_000,
  run: async ({ root, ctx }) => {
    const pkg = JSON.parse(await fs.readFile(path.join(root, 'package.json'), 'utf8')) as {
      bin?: Record<string, string>;
    };
    const bin = pkg.bin?.ifmesh ?? Object.values(pkg.bin ?? {})[0];
    if (!bin || !existsSync(path.join(root, bin)))
      return fail(`${bin ?? 'no bin entry'} missing in ${root}`, `run npm run build in ${root}`);
    const r = await ctx.exec(process.execPath, [path.join(root, bin), 'selftest', '--json'], {
      timeoutMs: SELFTEST_TIMEOUT_MS,
      cwd: ctx.cwd,
      env: { ...ctx.env, NO_COLOR: '1' },
    });
    let report: SelftestReport | undefined;
    try {
      report = JSON.parse(r.stdout) as SelftestReport;
    } catch {
      report = undefined;
    }
    if (r.code === null)
      return fail(
        `${bin} selftest gave no answer within ${formatDuration(SELFTEST_TIMEOUT_MS)}`,
        `run node ${bin} selftest`,
      );
    if (!report?.checks) {
      // Node puts the source line first when a module throws; the error's own line says why.
      const lines = r.stderr.trim().split('\n');
      const why = lines.find((l) => /^\w*Error\b/.test(l)) ?? (lines[0] || `exit ${r.code}`);
      return fail(`${bin} selftest does not run: ${why}`, `rebuild (npm run build) or reinstall in ${root}`);
    }
    const failed = report.checks.filter((c) => !c.ok);
    return failed.length || r.code !== 0
      ? fail(
          `${bin} selftest: ${failed.length} check(s) failed${failed[0] ? `: ${failed[0].name} — ${failed[0].detail}` : ` (exit ${r.code})`}`,
          `run node ${bin} selftest`,
        )
      : ok(`${bin} selftest: ${report.checks.length} checks passed`);
  },
};

/** The whole checklist for this configuration: one STUN and one TURN line per configured server. */
export function buildChecks(env: PreflightEnv): PreflightCheck[] {
  const c = env.loaded?.config;
  const servers: PreflightCheck[] = !c
    ? [{ name: 'STUN and TURN servers', timeoutMs: 1_000, run: async () => NO_CONFIG }]
    : [
        ...(c.stunServers.length
          ? c.stunServers.map(stunCheck)
          : [
              {
                name: 'STUN servers',
                timeoutMs: 1_000,
                run: async () => warn('none configured', 'set STUN_SERVERS'),
              },
            ]),
        ...(c.turnServers.length
          ? c.turnServers.map(turnCheck)
          : [
              {
                name: 'TURN servers',
                timeoutMs: 1_000,
                run: async (): Promise<CheckOutcome> =>
                  c.iceTransportPolicy === 'relay'
                    ? fail('none configured, but ICE_TRANSPORT_POLICY=relay', 'set TURN_SERVERS')
                    : warn('none configured: peers behind symmetric NAT cannot connect', 'set TURN_SERVERS'),
              },
            ]),
      ];
  const production = (env.production ?? [])
    .filter((f) => f.check !== TLS_FILES)
    .map((f) => productionCheck(f, c?.productionMode ?? false));
  return [
    nodeCheck,
    dependenciesCheck,
    configCheck,
    portCheck,
    tlsCheck,
    witnessCheck,
    ...servers,
    ...production,
    buildCheck,
  ];
}
