// The local stack that `ifmesh up` records in <state>/stack.json, so that every command finds its
// endpoints with no other flags.
import { readFileSync } from 'node:fs';
import { statePaths } from '../state/state-dir.js';

export interface StackFile {
  version: 1;
  created_at: string;
  agents: number;
  witness: { name: 'witness'; port: number };
  coturn: { name: string; port: number; relay: [number, number] }[];
  signaling: { name: string; port: number }[];
  /** nginx in front of the signaling instances, when nginx is installed. */
  nginx?: { name: 'nginx'; port: number };
  /** redis-server shared by the signaling instances (one mesh across them), when installed. */
  redis?: { name: 'redis'; port: number };
  /** A local PostgreSQL for the witness (`up --witness-db postgres`). */
  postgres?: { name: 'postgres'; port: number };
  /** Prometheus with the exported monitoring files (`up --with-prometheus`). */
  prometheus?: { name: 'prometheus'; port: number };
}

export interface StackSecrets {
  witness_api_key: string;
  admin_token: string;
  turn_password: string;
}

export const stackFile = (dir: string) => statePaths(dir).stack;

export function readStack(dir: string): StackFile | undefined {
  try {
    return JSON.parse(readFileSync(stackFile(dir), 'utf8')) as StackFile;
  } catch {
    return undefined;
  }
}

export function readStackSecrets(dir: string): StackSecrets | undefined {
  try {
    return JSON.parse(readFileSync(statePaths(dir).secrets, 'utf8')) as StackSecrets;
  } catch {
    return undefined;
  }
}

export const urls = {
  witness: (s: StackFile) => `http://127.0.0.1:${s.witness.port}`,
  signaling: (s: StackFile) => s.signaling.map((x) => `ws://127.0.0.1:${x.port}`),
  signalingHttp: (s: StackFile) => s.signaling.map((x) => `http://127.0.0.1:${x.port}`),
  nginx: (s: StackFile) => (s.nginx ? `ws://127.0.0.1:${s.nginx.port}` : null),
  prometheus: (s: StackFile) => (s.prometheus ? `http://127.0.0.1:${s.prometheus.port}` : null),
  stun: (s: StackFile) => s.coturn.map((c) => `stun:127.0.0.1:${c.port}`),
  turn: (s: StackFile) => s.coturn.map((c) => `turn:127.0.0.1:${c.port}?transport=udp`),
};
