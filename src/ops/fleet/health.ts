// Whether a recorded process answers as its role should: the one health check behind `status`,
// the restart path and the supervisor.
import type { Dispatcher } from 'undici';
import { prometheusReady } from '../../exec/prometheus.js';
import { pingRedis } from '../../exec/redis.js';
import type { ProcessRecord } from '../../state/processes.js';
import { httpHealthy, tcpOpen } from '../stack/stack.js';

/** ws(s):// and http(s):// name the same server; this is the HTTP side. */
export const httpOf = (url: string) => url.replace(/^ws(s?):\/\//i, 'http$1://');

/** ws(s):// of an http(s):// URL (agents dial WebSocket URLs). */
export const wsOf = (url: string) => url.replace(/^http(s?):\/\//i, 'ws$1://');

export async function answers(p: ProcessRecord, dispatcher?: Dispatcher): Promise<boolean> {
  switch (p.role) {
    case 'witness':
    case 'signaling':
    case 'nginx':
      return p.url ? httpHealthy(httpOf(p.url), dispatcher) : p.port ? tcpOpen(p.port) : true;
    case 'coturn':
      return p.port ? tcpOpen(p.port) : true;
    case 'redis':
      return p.url ? pingRedis(p.url) : p.port ? tcpOpen(p.port) : true;
    case 'prometheus':
      return p.url ? prometheusReady(p.url, dispatcher) : true;
    default:
      return true;
  }
}
