import { mkdirSync } from 'node:fs';
import path from 'node:path';
import {
  type RunningAlertmanager,
  type RunningPrometheus,
  startAlertmanager,
  startPrometheus,
} from '../../src/exec/prometheus.js';
import { requireBinary } from './binaries.js';
import { trackPid } from './pids.js';
import { freePort } from './processes.js';

/** A real Prometheus on loopback with its TSDB under `dir`, stopped by pid when the test ends. */
export async function startTestPrometheus(configFile: string, dir: string): Promise<RunningPrometheus> {
  requireBinary('prometheus', 'prometheus');
  const dataDir = path.join(dir, 'tsdb');
  mkdirSync(dataDir, { recursive: true });
  const prom = await startPrometheus({ configFile, port: await freePort(), dataDir });
  trackPid(prom.pid);
  return prom;
}

/** A real Alertmanager on loopback (no clustering), its data under `dir`, stopped by pid when the test ends. */
export async function startTestAlertmanager(
  configFile: string,
  dir: string,
  port?: number,
): Promise<RunningAlertmanager> {
  requireBinary('prometheus-alertmanager', 'prometheus-alertmanager');
  const dataDir = path.join(dir, 'alertmanager-data');
  mkdirSync(dataDir, { recursive: true });
  const am = await startAlertmanager({ configFile, port: port ?? (await freePort()), dataDir });
  trackPid(am.pid);
  return am;
}

/** An instant query through Prometheus's HTTP API. */
export async function promQuery(
  url: string,
  query: string,
): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
  const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(query)}`, {
    signal: AbortSignal.timeout(5_000),
  });
  const body = (await res.json()) as { status: string; error?: string; data: { result: any[] } };
  if (body.status !== 'success') throw new Error(`${query}: ${body.error}`);
  return body.data.result;
}

export async function promAlerts(url: string): Promise<{ labels: Record<string, string>; state: string }[]> {
  const res = await fetch(`${url}/api/v1/alerts`, { signal: AbortSignal.timeout(5_000) });
  return ((await res.json()) as { data: { alerts: { labels: Record<string, string>; state: string }[] } })
    .data.alerts;
}
