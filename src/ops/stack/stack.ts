import { connect, createServer } from 'node:net';
import type { Dispatcher } from 'undici';
import { httpRequest } from '../../clients/http.js';
import { writeStateJson } from '../../state/json-file.js';
import type { StackFile } from '../../state/stack-plan.js';
import type { StateDir } from '../../state/state-dir.js';

export { readStack, type StackFile, urls } from '../../state/stack-plan.js';

/** Written whole and synced (tmp + fsync + rename), like every state file. */
export function writeStack(state: StateDir, s: StackFile): void {
  writeStateJson(state.stack, s);
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
