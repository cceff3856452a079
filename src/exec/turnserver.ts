import { connect } from 'node:net';
import { stunBinding } from '../clients/stun.js';
import { type Clock, systemClock } from '../util/clock.js';
import { type ServerProcess, startServerProcess } from './server-process.js';

export interface TurnserverOptions {
  port: number;
  /** Relay port range [min, max]. */
  relayPorts: [number, number];
  user: string;
  password: string;
  realm?: string;
  listenIp?: string;
  allowLoopbackPeers?: boolean;
  binary?: string;
}

export interface RunningTurnserver extends ServerProcess {
  url: string;
  stunUrl: string;
}

export function turnserverArgs(o: TurnserverOptions): string[] {
  const ip = o.listenIp ?? '127.0.0.1';
  return [
    '-n',
    `--listening-ip=${ip}`,
    `--relay-ip=${ip}`,
    `--listening-port=${o.port}`,
    `--min-port=${o.relayPorts[0]}`,
    `--max-port=${o.relayPorts[1]}`,
    ...(o.allowLoopbackPeers ? ['--allow-loopback-peers'] : ['--no-loopback-peers']),
    '--lt-cred-mech',
    `--user=${o.user}:${o.password}`,
    `--realm=${o.realm ?? 'ifmesh'}`,
    '--no-tls',
    '--no-dtls',
    '--no-cli',
    '--fingerprint',
    '--log-file=stdout',
    '--simple-log',
  ];
}

/** Starts turnserver and waits until it accepts TCP on its port (it serves UDP on the same one). */
export async function startTurnserver(
  o: TurnserverOptions,
  timeoutMs = 5_000,
  clock: Clock = systemClock,
): Promise<RunningTurnserver> {
  const ip = o.listenIp ?? '127.0.0.1';
  const tcp = () =>
    new Promise<boolean>((resolve) => {
      const s = connect(o.port, ip);
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
  // coturn binds its UDP socket a moment after TCP accepts; agents and probes use UDP, so ready
  // means a STUN Binding is answered too.
  const udp = () =>
    stunBinding({ host: ip, port: o.port }, { timeoutMs: 250, clock }).then(
      () => true,
      () => false,
    );
  const server = await startServerProcess({
    name: 'turnserver',
    command: o.binary ?? 'turnserver',
    args: turnserverArgs(o),
    debianPackage: 'coturn',
    stdio: 'pipe',
    logLimit: 50_000,
    ready: async () => (await tcp()) && (await udp()),
    timeoutMs,
    intervalMs: 25,
    clock,
    notReady: `turnserver did not start on ${ip}:${o.port}`,
    logTail: 500,
    stopGraceMs: 2_000,
  });
  return {
    ...server,
    url: `turn:${ip}:${o.port}?transport=udp`,
    stunUrl: `stun:${ip}:${o.port}`,
  };
}
