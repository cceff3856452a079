import { promises as fs } from 'node:fs';
import path from 'node:path';
import { statePaths } from '../../state/state-dir.js';

/** A deploy's record: what `rollback` and `canary` work from. */
export interface Release {
  id: string;
  deployment_id: string;
  ref: string;
  config_hash: string;
  created_at: string;
  processes: { name: string; port?: number; pid?: number }[];
  agents: string[];
}

export async function recordRelease(stateDir: string, r: Release, keep = 10): Promise<string> {
  const p = statePaths(stateDir);
  const dir = p.releases;
  await fs.mkdir(dir, { recursive: true });
  const file = p.releaseFile(r.id);
  await fs.writeFile(file, `${JSON.stringify(r, null, 2)}\n`);
  const tmp = path.join(dir, 'current.tmp');
  await fs.writeFile(tmp, `${r.id}\n`);
  await fs.rename(tmp, p.currentRelease);
  const all = (await fs.readdir(dir)).filter((f) => f.endsWith('.json')).sort();
  for (const old of all.slice(0, Math.max(0, all.length - keep))) await fs.unlink(path.join(dir, old));
  return file;
}

export async function currentRelease(stateDir: string): Promise<Release | undefined> {
  const p = statePaths(stateDir);
  try {
    const id = (await fs.readFile(p.currentRelease, 'utf8')).trim();
    return JSON.parse(await fs.readFile(p.releaseFile(id), 'utf8')) as Release;
  } catch {
    return undefined;
  }
}
