// The production rules: what PRODUCTION_MODE=true demands beyond a configuration that validates.
// One function judges them all, so `preflight` (✗ lines) and `deploy` (a refusal before it starts
// anything) can never disagree; outside production mode preflight shows the same gaps as warnings.
import { promises as fs } from 'node:fs';
import { isIP } from 'node:net';
import { DEFAULT_CONFIG_PATH, type MeshConfig, unreadable } from '../../config/load.js';
import { type ConfigIssue, ProductionRefusedError } from '../../errors.js';
import { loadAllowList } from '../../services/signaling/allow-list.js';

export interface ProductionFinding {
  /** The rule, e.g. "admin token"; for the config loader's own production rules, the key. */
  check: string;
  ok: boolean;
  detail: string;
  /** One line: what to do when the rule fails. */
  fix: string;
}

export interface ProductionInput {
  config: MeshConfig;
  /** The env file the configuration was read from; undefined when none was. */
  envFile: string | undefined;
  /** The loader's own production issues (loadConfig with `productionRules: 'report'`). */
  configIssues?: readonly ConfigIssue[];
}

/** The rule preflight shows on its TLS line rather than a line of its own. */
export const TLS_FILES = 'TLS files';
const TLS_KEYS = new Set(['SIGNALING_TLS_CERT', 'SIGNALING_TLS_KEY']);

const pass = (check: string, detail: string): ProductionFinding => ({ check, ok: true, detail, fix: '' });
const broken = (check: string, detail: string, fix: string): ProductionFinding => ({
  check,
  ok: false,
  detail,
  fix,
});

function envFileRule(envFile: string | undefined): ProductionFinding {
  return envFile
    ? pass('env file', envFile)
    : broken(
        'env file',
        `no env file read (${DEFAULT_CONFIG_PATH} is absent; no --config or IFMESH_CONFIG): defaults and environment only`,
        `create ${DEFAULT_CONFIG_PATH} (ifmesh init writes one) or pass --config FILE`,
      );
}

/** SIGNALING_TLS_CERT and SIGNALING_TLS_KEY are set and name readable regular files. */
export async function tlsFilesRule(c: MeshConfig): Promise<ProductionFinding> {
  const fix =
    'point SIGNALING_TLS_CERT and SIGNALING_TLS_KEY at readable PEM files (certificate and its key)';
  if (!c.signalingTlsCert && !c.signalingTlsKey)
    return broken(TLS_FILES, 'not configured: signaling would serve ws:// and http:// without TLS', fix);
  const problems: string[] = [];
  for (const [key, file] of [
    ['SIGNALING_TLS_CERT', c.signalingTlsCert],
    ['SIGNALING_TLS_KEY', c.signalingTlsKey],
  ] as const) {
    const problem = file ? await unreadable(file) : 'is not set';
    if (problem) problems.push(file ? `${key} ${file} ${problem}` : `${key} ${problem}`);
  }
  return problems.length
    ? broken(TLS_FILES, problems.join('; '), fix)
    : pass(TLS_FILES, `${c.signalingTlsCert} and ${c.signalingTlsKey} readable`);
}

function witnessRule(c: MeshConfig): ProductionFinding {
  const check = 'witness over https';
  const fix = "set IF_WITNESS_ENDPOINT to the witness's https:// URL";
  if (!c.witnessUrl) return broken(check, 'IF_WITNESS_ENDPOINT is not set', fix);
  return c.witnessUrl.startsWith('https://')
    ? pass(check, c.witnessUrl)
    : broken(
        check,
        `IF_WITNESS_ENDPOINT is ${c.witnessUrl}: audit events and the API key would travel in clear`,
        fix,
      );
}

function adminTokenRule(c: MeshConfig): ProductionFinding {
  return c.signalingAdminToken
    ? pass('admin token', 'SIGNALING_ADMIN_TOKEN is set')
    : broken(
        'admin token',
        'SIGNALING_ADMIN_TOKEN is not set: every /admin/* call (key rotation, config reload) would be refused',
        'set SIGNALING_ADMIN_TOKEN to a random secret (openssl rand -hex 32)',
      );
}

async function allowListRule(c: MeshConfig): Promise<ProductionFinding> {
  const check = 'allow-list';
  const fix =
    'set SIGNALING_ALLOW_KEYS to a file of `PUBLIC_KEY AGENT_ID` lines (keys from ifmesh keys show FILE.pub)';
  const file = c.signalingAllowKeys;
  if (!file)
    return broken(check, 'SIGNALING_ALLOW_KEYS is not set: any agent with any key may register', fix);
  const problem = await unreadable(file);
  if (problem) return broken(check, `SIGNALING_ALLOW_KEYS ${file} ${problem}`, fix);
  try {
    const list = loadAllowList(await fs.readFile(file, 'utf8'), file);
    return pass(check, `${file}: ${list.size} agent${list.size === 1 ? '' : 's'}`);
  } catch (err) {
    return broken(check, (err as Error).message, fix);
  }
}

function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h === '::1') return true;
  return isIP(h) === 4 && h.startsWith('127.');
}

function clusterRule(c: MeshConfig): ProductionFinding {
  const check = 'cluster Redis over TLS';
  if (!c.signalingClusterUrl)
    return pass(check, "no SIGNALING_CLUSTER_URL (standalone, or deploy's own loopback Redis)");
  const url = new URL(c.signalingClusterUrl);
  const where = `${url.protocol}//${url.host}`;
  if (url.protocol === 'rediss:' || isLoopback(url.hostname)) return pass(check, where);
  return broken(
    check,
    `SIGNALING_CLUSTER_URL is ${where}, off loopback without TLS: cluster messages and the password travel in clear`,
    'use rediss://HOST:PORT (Redis with TLS), or a Redis on 127.0.0.1',
  );
}

/** Every production rule, passing or not, in a fixed order; the caller decides what a failure means. */
export async function checkProduction(input: ProductionInput): Promise<ProductionFinding[]> {
  const c = input.config;
  return [
    envFileRule(input.envFile),
    await tlsFilesRule(c),
    witnessRule(c),
    adminTokenRule(c),
    await allowListRule(c),
    clusterRule(c),
    // The loader's own rules (self-signed certificates, TURN, placeholders); TLS files are judged above.
    ...(input.configIssues ?? [])
      .filter((i) => !TLS_KEYS.has(i.key ?? ''))
      .map((i) => broken(i.key ?? 'configuration', i.message, i.fix)),
  ];
}

/**
 * With PRODUCTION_MODE=true, throws ProductionRefusedError (exit 2) naming every failing rule with
 * its fix; outside production mode, or when every rule passes, returns the findings.
 */
export async function refuseUnlessProductionReady(input: ProductionInput): Promise<ProductionFinding[]> {
  const findings = await checkProduction(input);
  const failing = findings.filter((f) => !f.ok);
  if (input.config.productionMode && failing.length)
    throw new ProductionRefusedError(
      failing.map((f) => ({
        file: undefined,
        line: undefined,
        key: `production rule "${f.check}"`,
        message: f.detail,
        fix: f.fix,
      })),
    );
  return findings;
}
