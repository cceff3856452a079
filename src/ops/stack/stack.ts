import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import type { Dispatcher } from 'undici';
import { httpRequest } from '../../clients/http.js';
import { type StackSecrets as Secrets, type StackFile, stackFile } from '../../config/local-stack.js';
import { statePaths } from '../../state/state-dir.js';

export { readStack, type StackFile, stackFile, urls } from '../../config/local-stack.js';

export function writeStack(dir: string, s: StackFile): void {
  mkdirSync(dir, { recursive: true });
  const tmp = `${stackFile(dir)}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(s, null, 2)}\n`);
  renameSync(tmp, stackFile(dir));
}

/** Local secrets, made once and kept 0600: never printed. */
export function secrets(dir: string): Secrets {
  const p = statePaths(dir);
  const file = p.secrets;
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as Secrets;
  mkdirSync(dir, { recursive: true });
  const s: Secrets = {
    witness_api_key: randomBytes(24).toString('base64url'),
    admin_token: randomBytes(24).toString('base64url'),
    turn_password: randomBytes(12).toString('base64url'),
  };
  writeFileSync(file, `${JSON.stringify(s, null, 2)}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  writeFileSync(p.adminToken, `${s.admin_token}\n`, { mode: 0o600 });
  return s;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function httpHealthy(url: string, dispatcher?: Dispatcher): Promise<boolean> {
  try {
    const r = await httpRequest(`${url}/health`, { timeoutMs: 1_000, dispatcher });
    return r.status === 200 && r.text.includes('"status":"ok"');
  } catch {
    return false;
  }
}

export function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.setTimeout(1_000);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.once('timeout', () => {
      s.destroy();
      resolve(false);
    });
  });
}
