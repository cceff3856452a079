// What the deploy tests share: an operator's project (agent configs and keys) and the services a
// deploy talks to (coturn for STUN, a witness), on loopback.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { run } from './cli.js';
import { startCoturn } from './coturn.js';
import { API_KEY, startWitness } from './witness.js';

/** keys/<id>.key and config/agents/<id>.json (loopback agents) under `dir`. */
export async function writeAgentConfigs(dir: string, ids: readonly string[]): Promise<void> {
  mkdirSync(path.join(dir, 'config/agents'), { recursive: true });
  for (const id of ids) {
    await run(['keys', 'generate', '--agent', id, '--out', 'keys'], { cwd: dir });
    writeFileSync(
      path.join(dir, `config/agents/${id}.json`),
      JSON.stringify({ agent_id: id, key: `../../keys/${id}.key`, loopback: true }),
    );
  }
}

export interface DeployDeps {
  /** STUN, the witness and its key, and loopback binding: what a test deploy's environment needs. */
  env: Record<string, string>;
  witnessUrl: string;
  stunUrl: string;
  stop(): Promise<void>;
}

export async function startDeployDeps(): Promise<DeployDeps> {
  const turn = await startCoturn();
  const w = await startWitness();
  return {
    env: {
      STUN_SERVERS: turn.stunUrl,
      IF_WITNESS_ENDPOINT: w.url,
      IF_WITNESS_API_KEY: API_KEY,
      // deploy binds SIGNALING_HOST (default 0.0.0.0): tests stay on loopback.
      SIGNALING_HOST: '127.0.0.1',
    },
    witnessUrl: w.url,
    stunUrl: turn.stunUrl,
    stop: async () => {
      await w.stop();
      await turn.stop();
    },
  };
}

/** `ifmesh deploy --json` of `instances` instances from `base`, nginx on `nginxPort`, into `state`. */
export function deployArgv(o: {
  instances: number;
  base: number;
  nginxPort: number;
  state: string;
  more?: string[];
}): string[] {
  const ports = ['--base-port', String(o.base), '--nginx-port', String(o.nginxPort)];
  return [
    'deploy',
    '--json',
    '--instances',
    String(o.instances),
    ...ports,
    '--state-dir',
    o.state,
    ...(o.more ?? []),
  ];
}

/** `--set`s of a canary candidate that registers but cannot connect: relay only, through coturn, with a wrong password. */
export function brokenTurnArgs(turnPort: number | string): string[] {
  return [
    '--set',
    'ICE_TRANSPORT_POLICY=relay',
    '--set',
    `TURN_SERVERS=turn:127.0.0.1:${turnPort}`,
    '--set',
    'TURN_USERNAME=ifmesh',
    '--set',
    'TURN_PASSWORD=wrong-password',
  ];
}
