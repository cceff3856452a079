// ifmesh failover: the failover guide's scenarios (A turn, B signaling, C partition, D cert, E keys) and
// validate-failover-recovery.sh. Thin: flags in, ops/failover out.
import path from 'node:path';
import type { Command } from 'commander';
import { Agent } from 'undici';
import type { CommandIo } from '../src/cli/define.js';
import { resolveFleet } from '../src/cli/fleet.js';
import {
  type ConfigFlags,
  durationFlag,
  intFlag,
  rttBudgetMs,
  withFlags,
  withRttBudget,
} from '../src/cli/options.js';
import { ExitCode, UnauthorizedError, UsageError } from '../src/errors.js';
import { messageExchange } from '../src/ops/agent/exchange.js';
import { iceServers } from '../src/ops/agent/ice.js';
import { planCertRotation } from '../src/ops/certs/rotate.js';
import { operator } from '../src/ops/deploy/releases.js';
import { CLASSIFICATION } from '../src/ops/failover/classification.js';
import {
  applyFailover,
  type FailoverPlan,
  newFailoverId,
  planCertFailover,
  planKeysFailover,
  planPartitionFailover,
  planPromoteBackup,
  planSignalingFailover,
  planTurnFailover,
} from '../src/ops/failover/scenarios.js';
import {
  CHECK_TITLES,
  parseScenario,
  type Scenario,
  type ValidationReport,
  validateRecovery,
} from '../src/ops/failover/validate.js';
import { planRotation } from '../src/ops/keys/rotate.js';
import { renderClassification, renderFailover, renderPlan, renderValidation } from '../src/ui/failover.js';
import { createProgress } from '../src/ui/progress.js';

/** The port of an http(s):// or ws(s):// URL. */
const portOf = (u: string) => /:(\d+)(?:\/|$)/.exec(u)?.[1];

type Flags = ConfigFlags & {
  signaling?: string;
  witness?: string;
  stateDir?: string;
  json?: boolean;
  dryRun?: boolean;
  id?: string;
  agents: string;
  messages: string;
  loopback?: boolean;
  stun?: string;
  insecure?: boolean;
  timeout: string;
  maxRttP95: string;
};

function validationOptions(cmd: Command): Command {
  return withRttBudget(withFlags(cmd, 'signaling', 'witness', 'state-dir', 'config', 'set', 'json'))
    .option('--agents <n>', 'temporary agents for the message delivery check', '3')
    .option('--messages <n>', 'signed pings per pair in the message delivery check', '10')
    .option('--stun <urls>', 'STUN URLs for the temporary agents (default STUN_SERVERS)')
    .option('--loopback', 'temporary agents gather only 127.0.0.1 candidates')
    .option('--insecure', 'accept a self-signed wss:// certificate')
    .option(
      '--timeout <duration>',
      'time allowed for each wait (peers on the replacement, a restart)',
      '60s',
    );
}

function scenarioOptions(cmd: Command): Command {
  return validationOptions(cmd)
    .option('--id <failover-id>', 'the failover id logged on every event (default: a new one)')
    .option('--dry-run', 'print the plan and change nothing');
}

export function register(cmd: Command, io: CommandIo): void {
  const { ctx } = io;
  cmd.description('Run a failover guide scenario on the local stack, then validate the recovery');
  cmd.addHelpText('after', `\n${renderClassification(CLASSIFICATION)}\n`);

  const setup = async (flags: Flags) => {
    const { loaded, state, fleet } = await resolveFleet(ctx, flags);
    const urls = fleet.signaling.map((x) => x.url);
    const witness = { url: fleet.witness.url, apiKey: fleet.witness.api_key, state };
    return { loaded, state, fleet, urls, http: fleet.signaling.map((x) => x.http), witness };
  };

  /** The message delivery check's flags, read before anything is changed (a typo fails first). */
  const checkFlags = (flags: Flags) => ({
    n: intFlag(flags.agents, '--agents', 2, 50),
    m: intFlag(flags.messages, '--messages', 1, 10_000),
    maxRttP95Ms: rttBudgetMs(flags.maxRttP95),
  });

  const validate = async (
    flags: Flags,
    s: Awaited<ReturnType<typeof setup>>,
    failoverId: string,
    scenario: Scenario,
    progress: Awaited<ReturnType<typeof createProgress>>,
    recovery?: { recovery_ms: number | null },
    /** An instance the run left down on purpose (promote-backup's failed one): not read. */
    down?: string,
  ): Promise<ValidationReport> => {
    if (!s.witness.apiKey)
      throw new UnauthorizedError(
        'no witness API key',
        'set IF_WITNESS_API_KEY (validation reads the witness)',
      );
    const { n, m, maxRttP95Ms } = checkFlags(flags);
    return validateRecovery(
      {
        failoverId,
        scenario,
        signalingHttp: down ? s.http.filter((h) => portOf(h) !== portOf(down)) : s.http,
        witness: s.witness,
        recovery,
        maxRttP95Ms,
        exchange: () =>
          messageExchange({
            clock: ctx.clock,
            signalingUrls: s.urls,
            iceServers: iceServers(s.loaded.config, {
              stun: flags.stun ?? s.fleet.stun[0],
              turn: '',
            }),
            agents: n,
            messages: m,
            loopbackOnly: Boolean(flags.loopback),
            formTimeoutMs: 20_000,
            rejectUnauthorized: !flags.insecure,
            ca: ctx.tls?.ca,
            dispatcher: ctx.dispatcher,
            witness: s.witness,
          }),
        onCheck: (c) => progress.step(CHECK_TITLES[c.name], c.passed ? 'ok' : 'fail', c.detail),
      },
      // --insecure: a self-signed wss:// instance's HTTP API is read as well as its WebSocket.
      flags.insecure ? { ...ctx, dispatcher: new Agent({ connect: { rejectUnauthorized: false } }) } : ctx,
    );
  };

  /** Plans with `plan`, prints it on --dry-run, else applies it under the deploy lock and validates. */
  const scenario =
    <F extends Flags>(
      letter: Scenario,
      plan: (flags: F, s: Awaited<ReturnType<typeof setup>>, id: string) => Promise<FailoverPlan>,
    ) =>
    async (flags: F) => {
      const timeoutMs = durationFlag(flags.timeout, '--timeout', { max: 3_600_000 });
      checkFlags(flags);
      const s = await setup(flags);
      const out = io.output(flags);
      const p = await plan(flags, s, flags.id ?? newFailoverId(letter, ctx.clock.now()));
      if (flags.dryRun) return out.result({ plan: p, dry_run: true }, renderPlan);
      const adminToken = s.fleet.admin_token;
      // B restarts processes and D files: only the admin API's scenarios need the token.
      if (!adminToken && (p.turn || p.partition || p.keys))
        throw new UnauthorizedError(
          'no signaling admin token',
          `set SIGNALING_ADMIN_TOKEN, or run against the local stack (${s.state.adminToken})`,
        );
      if (!s.witness.apiKey)
        throw new UnauthorizedError(
          'no witness API key',
          'set IF_WITNESS_API_KEY: every failover step is logged',
        );
      const progress = await createProgress(ctx, Boolean(flags.json));
      try {
        const report = await applyFailover(
          p,
          {
            state: s.state,
            adminToken: adminToken ?? '',
            witness: s.witness,
            timeoutMs,
            turnCredentials: s.fleet.turn_credentials,
            operator: operator(ctx.env),
            onStep: (l) => progress.info(l),
          },
          ctx,
        );
        const validation = await validate(
          flags,
          s,
          p.failover_id,
          p.scenario,
          progress,
          report.recovery,
          p.promote_backup?.failed,
        );
        await progress.close();
        const doc = { plan: p, dry_run: false, report, validation, ok: report.ok && validation.passed };
        out.result(doc, renderFailover);
        if (!doc.ok) io.setExitCode(ExitCode.checkFailed);
      } finally {
        await progress.close();
      }
    };

  scenarioOptions(cmd.command('turn').description('Scenario A: replace a failed TURN server'))
    .requiredOption('--failed <url>', 'the TURN server that failed (turn:host:port)')
    .requiredOption('--replacement <url>', 'the TURN server to use instead')
    .option('--no-probe', 'switch without testing the replacement first (the guide’s step 1)')
    .action(
      scenario(
        'A',
        async (flags: Flags & { failed?: string; replacement?: string; probe: boolean }, s, id) => {
          const source = s.loaded.sources.TURN_SERVERS?.kind ?? 'default';
          return planTurnFailover({
            failoverId: id,
            signaling: s.urls,
            turnServers: s.fleet.turn,
            failed: flags.failed!,
            replacement: flags.replacement!,
            probe: flags.probe,
            credentials: s.fleet.turn_credentials !== null,
            // loaded.file is shown relative to the working directory; the plan names it absolutely.
            envFile: s.loaded.file ? path.resolve(ctx.cwd, s.loaded.file) : undefined,
            turnServersSource: source === 'default' && s.fleet.turn.length ? 'records' : source,
            shadowedBy: s.fleet.records.flatMap((r) =>
              r.role === 'signaling' && r.spec?.env.TURN_SERVERS !== undefined
                ? [{ instance: r.name, turn_servers: r.spec.env.TURN_SERVERS }]
                : [],
            ),
          });
        },
      ),
    );

  scenarioOptions(
    cmd
      .command('signaling')
      .description(
        'Scenario B: restart a dead signaling instance or promote the backup, then watch it stabilise',
      ),
  )
    .requiredOption('--failed <url>', 'the signaling instance that failed (ws://127.0.0.1:PORT)')
    .option(
      '--action <action>',
      'restart (the dead instance, from its process record) or promote-backup (nginx backup → active)',
      'restart',
    )
    .option('--stabilize <duration>', 'how long the restarted instance must stay healthy', '5m')
    .action(
      scenario('B', async (flags: Flags & { failed?: string; action: string; stabilize: string }, s, id) => {
        const stabilizeMs = durationFlag(flags.stabilize, '--stabilize', { min: 0, max: 3_600_000 });
        if (flags.action === 'promote-backup')
          return planPromoteBackup({
            failoverId: id,
            state: s.state,
            signaling: s.urls,
            failed: flags.failed!,
            stabilizeMs,
          });
        if (flags.action !== 'restart')
          throw new UsageError(
            `--action ${flags.action} is not known`,
            'use --action restart or promote-backup',
          );
        return planSignalingFailover({
          failoverId: id,
          state: s.state,
          signaling: s.urls,
          failed: flags.failed!,
          stabilizeMs,
        });
      }),
    );

  scenarioOptions(
    cmd.command('partition').description('Scenario C: manual mesh healing with staggered reconnections'),
  )
    .option('--agent <id>', "heal this agent's links (default: every pair not reported connected)")
    .option('--stagger <duration>', 'wait between one agent’s reconnections and the next one’s', '500ms')
    .action(
      scenario('C', async (flags: Flags & { agent?: string; stagger: string }, s, id) =>
        planPartitionFailover({
          failoverId: id,
          signaling: s.urls,
          agent: flags.agent,
          staggerMs: durationFlag(flags.stagger, '--stagger', { min: 0, max: 60_000 }),
        }),
      ),
    );

  scenarioOptions(
    cmd.command('cert').description('Scenario D: certificate rotation (certificate-rotation-procedure.sh)'),
  )
    .option('--cert <file>', 'PEM certificate (default SIGNALING_TLS_CERT)')
    .option('--key <file>', 'PEM private key (default SIGNALING_TLS_KEY)')
    .option('--self-signed-dev', 'generate a self-signed certificate (development only)')
    .option('--days <n>', 'lifetime of a --self-signed-dev certificate', '30')
    .action(
      scenario(
        'D',
        async (
          flags: Flags & { cert?: string; key?: string; selfSignedDev?: boolean; days: string },
          s,
          id,
        ) => {
          const cert = flags.cert ? path.resolve(ctx.cwd, flags.cert) : s.loaded.config.signalingTlsCert;
          const key = flags.key ? path.resolve(ctx.cwd, flags.key) : s.loaded.config.signalingTlsKey;
          if (!cert || !key)
            throw new UsageError(
              'no certificate to rotate',
              'pass --cert and --key, or set SIGNALING_TLS_CERT/KEY',
            );
          if (flags.selfSignedDev && s.loaded.config.productionMode)
            throw new UsageError('--self-signed-dev is refused with PRODUCTION_MODE=true', 'install certbot');
          const days = intFlag(flags.days, '--days', 1, 825);
          const c = await planCertRotation(
            { cert, key, selfSignedDev: Boolean(flags.selfSignedDev), state: s.state, days },
            ctx,
          );
          return planCertFailover({ failoverId: id, signaling: s.urls, cert: c });
        },
      ),
    );

  scenarioOptions(cmd.command('keys').description('Scenario E: emergency SRTP key rotation'))
    .option('--incident-id <id>', 'the security incident (logs srtp_key_compromise_detected)')
    .option('--reason <text>', 'why (default security_incident with --incident-id, else scheduled)')
    .action(
      scenario('E', async (flags: Flags & { incidentId?: string; reason?: string }, s, id) =>
        planKeysFailover({
          failoverId: id,
          signaling: s.urls,
          keys: planRotation({
            signaling: s.http,
            reason: flags.reason,
            incidentId: flags.incidentId,
            timeoutMs: durationFlag(flags.timeout, '--timeout', { max: 3_600_000 }),
          }),
        }),
      ),
    );

  withFlags(
    cmd
      .command('list')
      .description("the guide's classification: scenarios A–E, scope, recovery-time target, manual steps"),
    'json',
  ).action((flags: { json?: boolean }) =>
    io.output(flags).result({ scenarios: CLASSIFICATION }, (d) => renderClassification(d.scenarios)),
  );

  validationOptions(
    cmd
      .command('validate')
      .description(
        'validate-failover-recovery.sh: seven checks, pass/fail each, the recovery time against its target',
      ),
  )
    .requiredOption('--id <failover-id>', 'the failover to validate')
    .requiredOption('--scenario <A-E>', 'the scenario it was')
    .action(async (flags: Flags & { scenario: string }) => {
      const scenarioName = parseScenario(flags.scenario);
      const s = await setup(flags);
      const out = io.output(flags);
      const progress = await createProgress(ctx, Boolean(flags.json));
      const report = await validate(flags, s, flags.id!, scenarioName, progress).finally(() =>
        progress.close(),
      );
      out.result(report, renderValidation);
      if (!report.passed) io.setExitCode(ExitCode.checkFailed);
    });
}
