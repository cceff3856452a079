import path from 'node:path';

/** Where ifmesh keeps local state: --state-dir, else $IFMESH_STATE_DIR, else ./.ifmesh. */
export function resolveStateDir(cwd: string, env: Record<string, string | undefined>, flag?: string): string {
  return path.resolve(cwd, flag ?? env.IFMESH_STATE_DIR ?? '.ifmesh');
}
