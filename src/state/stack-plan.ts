// The port plan of the local stack `ifmesh up` makes (<state>/stack.json): which ports it chose, so
// that a second `up` reuses them. Only `up` reads it; every other command learns what runs where
// from the fleet view (src/ops/fleet/fleet.ts), which reads the process records.
import { readFileSync } from 'node:fs';
import type { StateDir } from './state-dir.js';

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

export function readStack(state: StateDir): StackFile | undefined {
  try {
    return JSON.parse(readFileSync(state.stack, 'utf8')) as StackFile;
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
