import { packageVersion } from '../../paths.js';
import { describeCorrupt } from '../../state/json-file.js';
import { scanProcesses } from '../../state/processes.js';
import type { StateDir } from '../../state/state-dir.js';
import { currentReleaseOrBroken, listReleases } from '../deploy/releases.js';
import { isAlive } from '../fleet/supervisor.js';
import { entryOf, listBuilds, ownBin } from '../release/install.js';

/**
 * `releases`: the recorded history, newest first (without the agents' start specs: env may hold
 * secrets), and the installed code: each release's version, source and integrity, and the running
 * processes whose launch spec runs it.
 */
export async function releaseHistory(state: StateDir) {
  // A `current` that names no record is reported beside the list, not instead of it: the list is
  // what its fix needs (a release id to write into it).
  const { release: cur, broken } = await currentReleaseOrBroken(state);
  // A torn release record is an error as ever (`releases` cannot list it either).
  if (broken && broken.file !== state.currentRelease) throw broken;
  const current_error = broken ? describeCorrupt(broken) : null;
  const all = await listReleases(state);
  const running = scanProcesses(state).records.filter((p) => p.pid > 0 && isAlive(p.pid));
  const runs = (bin: string) =>
    running
      .filter((p) => entryOf(p) === bin)
      .map((p) => p.name)
      .sort();
  const own = ownBin();
  return {
    current: cur?.id ?? null,
    current_error,
    releases: all.reverse().map((r) => ({
      id: r.id,
      ref: r.ref,
      version: r.version ?? null,
      config_hash: r.config_hash,
      deployment_id: r.deployment_id,
      created_at: r.created_at,
      who: r.who ?? null,
      outcome: r.outcome ?? null,
      agents: r.agents,
      current: r.id === cur?.id,
      /** The installed code it runs; null: the running ifmesh's own. */
      code: r.build
        ? { id: r.build.id, version: r.build.version, integrity: r.build.integrity, source: r.build.source }
        : null,
    })),
    installed: [
      ...listBuilds(state).map((b) => ({
        id: b.id as string | null,
        version: b.version,
        source: b.source as { kind: string; spec: string; commit?: string },
        integrity: b.integrity as string | null,
        dir: b.dir,
        installed_at: b.installed_at as string | null,
        npm_mode: b.npm_mode as string | null,
        processes: runs(b.bin),
      })),
      {
        id: null,
        version: packageVersion(),
        source: { kind: 'running', spec: own },
        integrity: null,
        dir: own,
        installed_at: null,
        npm_mode: null,
        processes: runs(own),
      },
    ],
  };
}
