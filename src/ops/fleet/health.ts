// Whether a recorded process answers as its role should: the one health check behind `status`,
// the restart path and the supervisor.
import type { Dispatcher } from 'undici';
import { httpUrlOf } from '../../clients/signaling.js';
import { prometheusReady } from '../../exec/prometheus.js';
import { pingRedis } from '../../exec/redis.js';
import type { ProcessRecord } from '../../state/processes.js';
import { httpHealthy, tcpOpen } from '../stack/stack.js';

/**
 * `throwUntrusted`: for a decision that would act on a live process as on a failed one (restart it,
 * fail over from it). A certificate this command cannot verify then throws its one-line error with
 * the --ca fix: the process answered, only this command cannot trust the answer.
 */
export async function answers(
  p: ProcessRecord,
  dispatcher?: Dispatcher,
  o: { throwUntrusted?: boolean } = {},
): Promise<boolean> {
  switch (p.role) {
    case 'witness':
    case 'signaling':
    case 'nginx':
      return p.url ? httpHealthy(httpUrlOf(p.url), dispatcher, o) : p.port ? tcpOpen(p.port) : true;
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
