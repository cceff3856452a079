import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stunBinding } from '../clients/stun.js';
import { writeFileWhole } from '../state/json-file.js';
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
  /** coturn --stale-nonce: a nonce is good this many seconds, then answered with 438 (unset: forever). */
  staleNonceSeconds?: number;
  binary?: string;
  /**
   * The 0600 config file holding the long-term credential (`user=NAME:PASSWORD`), so the password
   * never sits on turnserver's command line. startTurnserver makes a private temp one when unset.
   */
  configFile?: string;
}

export interface RunningTurnserver extends ServerProcess {
  url: string;
  stunUrl: string;
}

/**
 * What goes into turnserver's config file: the credential, and the options that belong with it.
 * coturn reads `user=` lines as static long-term users; the file is the only place the password is.
 */
export function turnserverConfig(o: Pick<TurnserverOptions, 'user' | 'password' | 'realm'>): string {
  if (/[\s:]/.test(o.user) || /[\r\n]/.test(o.password))
    throw new Error('a TURN user name has no spaces or colons, and a password no line breaks');
  return [
    '# Written by ifmesh: the TURN long-term credential. Keep this file 0600.',
    'lt-cred-mech',
    `realm=${o.realm ?? 'ifmesh'}`,
    `user=${o.user}:${o.password}`,
    '',
  ].join('\n');
}

/** Writes the config file whole (tmp, fsync, rename), readable by its owner only. */
export function writeTurnserverConfig(
  file: string,
  o: Pick<TurnserverOptions, 'user' | 'password' | 'realm'>,
): void {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  writeFileWhole(file, turnserverConfig(o), 0o600);
  chmodSync(file, 0o600);
}

/** turnserver's arguments: `-c` with the config file (the credential), then the non-secret options. */
export function turnserverArgs(
  o: Omit<TurnserverOptions, 'user' | 'password'> & { configFile: string },
): string[] {
  const ip = o.listenIp ?? '127.0.0.1';
  return [
    '-c',
    o.configFile,
    `--listening-ip=${ip}`,
    `--relay-ip=${ip}`,
    `--listening-port=${o.port}`,
    `--min-port=${o.relayPorts[0]}`,
    `--max-port=${o.relayPorts[1]}`,
    // coturn 4.6 denies loopback peers by default and no longer knows --no-loopback-peers (it prints
    // its help and exits): the default is said by leaving the flag out.
    ...(o.allowLoopbackPeers ? ['--allow-loopback-peers'] : []),
    ...(o.staleNonceSeconds ? [`--stale-nonce=${o.staleNonceSeconds}`] : []),
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
  // Without a configFile the credential goes into a private temp dir, removed once coturn has read
  // it (it answers only after loading its configuration), so nothing is left whoever stops it.
  const own = o.configFile ? undefined : mkdtempSync(path.join(tmpdir(), 'ifmesh-turn-'));
  const configFile = o.configFile ?? path.join(own!, 'turnserver.conf');
  writeTurnserverConfig(configFile, o);
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
  const removeOwn = () => {
    if (own) rmSync(own, { recursive: true, force: true });
  };
  const server = await startServerProcess({
    name: 'turnserver',
    command: o.binary ?? 'turnserver',
    args: turnserverArgs({ ...o, configFile }),
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
  }).finally(removeOwn);
  return {
    ...server,
    url: `turn:${ip}:${o.port}?transport=udp`,
    stunUrl: `stun:${ip}:${o.port}`,
  };
}
