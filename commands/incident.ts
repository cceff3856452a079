import type { Command } from 'commander';
import { type ConfigFlags, withFlags } from '../src/cli/options.js';
import type { CommandIo } from '../src/cli/registry.js';
import { loadConfig } from '../src/config/load.js';
import { resolveStateDir } from '../src/config/state.js';
import { loadFleet } from '../src/ops/fleet/fleet.js';
import { type IncidentOptions, planIncident, runIncident } from '../src/ops/incident/declare.js';
import {
  acknowledgeIncident,
  escalateIncident,
  resolveIncident,
  watchIncident,
} from '../src/ops/incident/lifecycle.js';
import { configuredNotifiers } from '../src/ops/incident/notify/send.js';
import { INCIDENT_KINDS, type IncidentKind, listIncidents, readIncident } from '../src/ops/incident/store.js';
import { resolveTargets } from '../src/ops/monitoring/monitor.js';
import { readSecrets } from '../src/state/secrets.js';
import { renderIncident, renderIncidentList, renderPlan } from '../src/ui/incident.js';

type Flags = ConfigFlags & {
  json?: boolean;
  signaling?: string;
  witness?: string;
  stateDir?: string;
  notify?: boolean;
  investigate?: boolean;
  dryRun?: boolean;
  watch?: boolean;
};

const HELP: Record<IncidentKind, string> = {
  p1: 'total outage: restart dead signaling instances, assess, page (incident-response-p1-total-outage.sh)',
  p2: 'high latency: quantify slow and TURN connections, push bandwidth adaptation (incident-response-p2-high-latency.sh)',
  security: 'signature failures: watch one, block a repeat offender, escalate failures across peers to P1',
  'cert-expiry': 'certificate expiration: declare, assess, and the commands to run',
  'turn-failure': 'TURN server failure: declare, assess, and the commands to run',
};

export function register(cmd: Command, io: CommandIo): void {
  const { ctx } = io;
  const setup = async (flags: Flags) => {
    const loaded = await loadConfig({ cwd: ctx.cwd, env: ctx.env, file: flags.config, flags: flags.set });
    const stateDir = resolveStateDir(ctx.cwd, ctx.env, flags.stateDir);
    const targets = resolveTargets(flags, ctx.env, loaded, stateDir);
    const w = loadFleet(stateDir, loaded, { witness: flags.witness }).witness;
    return {
      loaded,
      stateDir,
      targets,
      witness: w.url ? { url: w.url, apiKey: w.api_key } : null,
      notifiers: configuredNotifiers(loaded.config),
    };
  };
  const common = (c: Command) => withFlags(c, 'state-dir', 'signaling', 'witness', 'config', 'set', 'json');
  for (const kind of INCIDENT_KINDS) {
    common(cmd.command(kind).description(HELP[kind]))
      .option('--notify', 'page PagerDuty now (escalation level 1); later levels go to Slack, then e-mail')
      .option(
        '--investigate',
        "p1: also run investigate-p1-outage.sh's checks (resources, network, witness, DNS, backends)",
      )
      .option('--dry-run', 'print the plan and touch nothing')
      .action(async (flags: Flags) => {
        const s = await setup(flags);
        const out = io.output(flags);
        for (const w of s.loaded.warnings) out.warn(w);
        const hosts = [
          ...[...s.targets.signaling, s.witness?.url ?? ''].filter(Boolean).map((u) => new URL(u).hostname),
          ...s.loaded.config.turnServers.map((t) => t.host),
        ];
        const o: IncidentOptions = {
          kind,
          stateDir: s.stateDir,
          signaling: s.targets.signaling,
          witness: s.witness,
          witnessToken: s.targets.witness?.token,
          notifiers: s.notifiers,
          notify: Boolean(flags.notify),
          investigate: Boolean(flags.investigate),
          hosts,
          production: s.loaded.config.productionMode,
          allowSelfSigned: s.loaded.config.allowSelfSignedCerts,
          adminToken: s.loaded.config.signalingAdminToken || readSecrets(s.stateDir)?.admin_token,
          tlsCert: s.loaded.config.signalingTlsCert,
          tlsKey: s.loaded.config.signalingTlsKey,
          clusterUrl: s.loaded.config.signalingClusterUrl || undefined,
        };
        if (flags.dryRun) return out.result(planIncident(o, ctx), renderPlan);
        const rec = await runIncident(o, ctx);
        out.result(rec, (r, c) => renderIncident(r, c, s.stateDir));
        if (rec.actions.some((a) => !a.ok)) io.setExitCode(1);
      });
  }
  withFlags(cmd.command('list').description('every incident, open first'), 'state-dir', 'json').action(
    (flags: Flags) => {
      const stateDir = resolveStateDir(ctx.cwd, ctx.env, flags.stateDir);
      io.output(flags).result({ incidents: listIncidents(stateDir) }, renderIncidentList);
    },
  );
  common(cmd.command('show <id>').description('one incident; --watch follows it and escalates when due'))
    .option(
      '--watch',
      'follow it until resolved, escalating on schedule (Slack past its response time, e-mail for a P1 over an hour)',
    )
    .action(async (id: string, flags: Flags) => {
      const s = await setup(flags);
      const out = io.output(flags);
      if (!flags.watch)
        return out.result(readIncident(s.stateDir, id), (r, c) => renderIncident(r, c, s.stateDir));
      const rec = await watchIncident(
        { stateDir: s.stateDir, witness: s.witness, notifiers: s.notifiers },
        id,
        ctx,
        (r) => {
          if (!flags.json)
            ctx.stdout.write(
              `${new Date(ctx.clock.now()).toISOString()} ${r.id} ${r.status} level ${r.escalation_level}\n`,
            );
        },
      );
      out.result(rec, (r, c) => renderIncident(r, c, s.stateDir));
    });
  for (const [name, what, fn] of [
    ['resolve', 'close it, release the deploy lock, resolve the page', resolveIncident],
    [
      'escalate',
      'raise it one escalation level (PagerDuty, Slack, e-mail) and notify that level',
      escalateIncident,
    ],
    ['ack', 'acknowledge the page (PagerDuty acknowledge)', acknowledgeIncident],
  ] as const) {
    common(cmd.command(`${name} <id>`).description(what)).action(async (id: string, flags: Flags) => {
      const s = await setup(flags);
      const rec = await fn({ stateDir: s.stateDir, witness: s.witness, notifiers: s.notifiers }, id, ctx);
      io.output(flags).result(rec, (r, c) => renderIncident(r, c, s.stateDir));
    });
  }
}
