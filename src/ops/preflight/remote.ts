// The checks that talk to the network: IF.witness over HTTP, STUN and TURN over UDP.
import { httpRequest } from '../../clients/http.js';
import { stunBinding, turnAllocate } from '../../clients/stun.js';
import type { IceUrl } from '../../config/ice-url.js';
import { IfmeshError } from '../../errors.js';
import { formatMs } from '../../ui/units.js';
import { loadFleet } from '../fleet/fleet.js';
import { fail, NO_CONFIG, ok, type PreflightCheck, warn } from './types.js';

export const witnessCheck: PreflightCheck = {
  name: 'IF.witness reachable, API key accepted',
  timeoutMs: 6_000,
  run: async ({ loaded, state, ctx }) => {
    if (!loaded) return NO_CONFIG;
    const { url, api_key: apiKey } = loadFleet(state, loaded).witness;
    const opts = { timeoutMs: 5_000, dispatcher: ctx.dispatcher, signal: ctx.signal };
    try {
      const health = await httpRequest(`${url}/health`, opts);
      if (health.status !== 200)
        return fail(
          `${url}/health answered ${health.status}`,
          'look at the witness logs (ifmesh logs witness)',
        );
      if (!apiKey) return fail(`${url} is up but IF_WITNESS_API_KEY is not set`, 'set IF_WITNESS_API_KEY');
      // An empty batch: the witness checks the bearer token first (401 when wrong) and then refuses
      // the empty batch (400), so the key is proven without writing anything to the audit log.
      const probe = await httpRequest(`${url}/api/log`, {
        ...opts,
        method: 'POST',
        body: '[]',
        headers: { authorization: `Bearer ${apiKey}` },
      });
      if (probe.status === 401 || probe.status === 403)
        return fail(
          `${url} refused the API key (${probe.status})`,
          'set IF_WITNESS_API_KEY to the key the witness was started with',
        );
      if (probe.status >= 500)
        return fail(`${url}/api/log answered ${probe.status}`, 'look at the witness logs');
      return ok(`${url} healthy, API key accepted`);
    } catch (err) {
      if (err instanceof IfmeshError)
        return fail(
          err.message,
          'start the witness (ifmesh up, or ifmesh witness serve) or fix IF_WITNESS_ENDPOINT',
        );
      throw err;
    }
  },
};

const PROBE_MS = 3_000;

export function stunCheck(server: IceUrl): PreflightCheck {
  return {
    name: `STUN ${server.url}`,
    timeoutMs: PROBE_MS + 1_000,
    run: async ({ ctx }) => {
      if (server.scheme === 'stuns' || server.transport === 'tcp')
        return warn('not probed: only STUN over UDP is checked', 'probe it by hand (turnutils_stunclient)');
      try {
        const r = await stunBinding(server, { timeoutMs: PROBE_MS, clock: ctx.clock });
        return ok(`Binding answered in ${formatMs(r.rttMs)}${r.mapped ? `, mapped ${r.mapped}` : ''}`);
      } catch (err) {
        return fail((err as Error).message, 'check the server runs and UDP reaches it; fix STUN_SERVERS');
      }
    },
  };
}

export function turnCheck(server: IceUrl): PreflightCheck {
  return {
    name: `TURN ${server.url}`,
    timeoutMs: PROBE_MS + 1_000,
    run: async ({ ctx, loaded }) => {
      const { turnUsername: username, turnPassword: password } = loaded!.config;
      if (!username || !password)
        return fail('TURN_USERNAME or TURN_PASSWORD is not set', 'set both to a user of the TURN server');
      if (server.scheme === 'turns' || server.transport === 'tcp')
        return warn('not probed: only TURN over UDP is checked', 'probe it by hand (turnutils_uclient)');
      try {
        const r = await turnAllocate(
          server,
          { username, password },
          { timeoutMs: PROBE_MS, clock: ctx.clock },
        );
        return ok(`Allocate accepted (realm ${r.realm}, relay ${r.relayed}), released`);
      } catch (err) {
        const code = (err as { code?: number }).code;
        return fail(
          (err as Error).message,
          code === 401 || code === 441
            ? "TURN_USERNAME/TURN_PASSWORD are not accepted: fix them or the server's user"
            : 'check the server runs and UDP reaches it; fix TURN_SERVERS',
        );
      }
    },
  };
}
