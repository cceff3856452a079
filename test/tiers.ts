// The two tiers of the suite. `npm test` (CI, the README's test line) runs everything but the files
// below, and stays within 15 minutes on a 2-core machine; `npm run test:all` runs every file. These
// are the longest files, each proving something the quick tier also touches more briefly: crash drills
// at every boundary, long kill loops, whole stacks on PostgreSQL or with Prometheus.
export const FULL_ONLY = [
  // The canary runner SIGKILLed at each of its four boundaries, resumed and aborted (~2 min).
  'test/e2e/rollout-crash.test.ts',
  // kill -9 at every step boundary of deploy and rollback (~2 min), of every failover scenario on a
  // standby fleet (~2.5 min), of rotate-keys, maintenance daily, certs rotate and failover cert on a
  // TLS fleet (~5 min); the quick tier keeps one first deploy killed midway
  // (test/faults/crash-quick.test.ts).
  'test/faults/crash-deploy.test.ts',
  'test/faults/crash-failover.test.ts',
  'test/faults/crash-certs-keys.test.ts',
  // Three packed builds of the project installed, a faulty one canaried and rolled back, a good one
  // promoted and rolled back across builds (~3 min); the quick tier keeps release.test.ts.
  'test/e2e/release-canary.test.ts',
  // The git-ref and npm-spec release forms: a TypeScript build of HEAD and a scoped package from a
  // registry, each installed and deployed (~35 s); the quick tier keeps release.test.ts (tarballs).
  'test/e2e/release-sources.test.ts',
  // `canary status --watch` in tmux and two pipes while a canary runs on a deployed fleet (~1 min);
  // the quick tier keeps the incident watch (test/integration/incident-watch.test.ts).
  'test/e2e/canary-watch.test.ts',
  // `ifmesh monitor` (healthy, over the error rate, witness unreachable), a canary whose analysis
  // cannot read the witness, a canary of `up`'s stack (~80 s); the quick tier keeps rollout.test.ts
  // (promote, rollback, dry run) and the monitor triggers and gate states (test/unit/rollout.test.ts).
  'test/e2e/rollout-monitor.test.ts',
  // Canary freeze/abort and promote from a second terminal, rollback to a failing target (~55 s).
  'test/e2e/rollout-operator.test.ts',
  // Two stages on real fleets (staging plain, production with TLS, an https witness and every
  // production rule met), canaried staging then production (~95 s); test/integration/stages.test.ts
  // is the quick tier's proof of the same resolution and promotion check, on disk.
  'test/e2e/stages.test.ts',
  // 50 witness kill -9 cycles under writers, and PostgreSQL under concurrent ingest (~2 min together).
  'test/faults/witness-kill9.test.ts',
  'test/faults/witness-pg-concurrent.test.ts',
  // Agents left running for the hygiene soak (~30 s).
  'test/faults/agent-hygiene.test.ts',
  // `up --with-prometheus` and `up --witness-db postgres` (the quick tier keeps the Prometheus and
  // PostgreSQL integration tests) (~2 min together).
  'test/e2e/up-prometheus.test.ts',
  'test/e2e/stack-postgres.test.ts',
  // 6,000 fuzzed frames and requests against signaling and the witness (~30 s); the inputs it found
  // are fixed regressions in test/integration/hostile-targets.test.ts, which the quick tier runs.
  'test/faults/fuzz-servers.test.ts',
  // deploy --supervisor systemd (TLS) on a real systemd booted in a container: kill -9, incident p1,
  // failover, logs, preflight's service user, canary, rollback, certs rotate, down, and systemd
  // install on an `up` stack (~4 min); the quick tier keeps the unit rendering and systemd-analyze
  // verify (test/unit/systemd-units.test.ts) and the service-user check on this host's users
  // (test/integration/preflight-service-user.test.ts).
  'test/e2e/systemd.test.ts',
  // The NAT traversal matrix: 12 labs, two agents each (~5 min); the quick tier keeps the lab itself
  // and the symmetric-NAT pair (test/lab/lab.test.ts, test/lab/lab-symmetric.test.ts).
  'test/lab/nat-matrix.test.ts',
  // Tree 1 inside the lab with UDP to coturn dropped at one NAT (~40 s).
  'test/lab/lab-troubleshoot.test.ts',
  // Dependencies failing mid-procedure on deployed fleets (issue 23.2): the witness killed during a
  // canary and down for a whole window (~80 s), Redis stopped during a deploy and a canary (~2 min),
  // nginx's master killed during failover B (~40 s). The quick tier keeps the short one, coturn killed
  // during failover A (test/faults/failover-coturn-kill.test.ts).
  'test/faults/canary-witness-down.test.ts',
  'test/faults/redis-down.test.ts',
  'test/faults/failover-nginx-kill.test.ts',
  // Loss and delay between two agents, and a partition, in a lab's namespaces (~60 s).
  'test/faults/netem-lab.test.ts',
];
