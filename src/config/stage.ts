// Stages are environments (docs/deploy.md "Stages"): `--stage NAME` selects a named environment, with its own
// env file and its own state directory (so its own fleet, release history and canary), beside the
// unnamed environment every command uses without --stage, which is exactly what it was before
// stages existed. One env file per stage, not a `stages` section in one file: a stage's file is the
// runbook's template filled in for that environment, so `config check --config` and the services
// (which get IFMESH_CONFIG) read it like any other, and a secret of production never sits in the
// file staging's operators edit.
import path from 'node:path';
import { UsageError } from '../errors.js';

/** Lower case, a letter first, then letters, digits or '-': a file and a directory name anywhere. */
export const STAGE_NAME = /^[a-z][a-z0-9-]{0,31}$/;

/** The stage that runs in production mode, and the stage a release must pass before it. */
export const PRODUCTION_STAGE = 'production';

/** Validates `name` (a --stage value); a bad one is a usage error (exit 2) naming the rule. */
export function parseStage(name: string): string {
  if (!STAGE_NAME.test(name))
    throw new UsageError(
      `--stage ${JSON.stringify(name)} is not a stage name`,
      'use 1-32 lower-case letters, digits or "-", starting with a letter (e.g. --stage staging)',
      'stage_invalid',
    );
  return name;
}

/** The env file of `stage`, relative to the working directory: config/webrtc-<stage>.env. */
export function stageEnvFile(stage: string): string {
  return path.join('config', `webrtc-${parseStage(stage)}.env`);
}

/** The state directory of `stage` under the state root (--state-dir); the root itself without one. */
export function stageStateDir(root: string, stage: string | undefined): string {
  return stage === undefined ? root : path.join(root, 'stages', parseStage(stage));
}
