// Every key of the runbook's config/webrtc-production.env template (CONTRACT §4), with its default.
// Defaults are the template's values except where the template holds a placeholder (host names
// under example.com, "username_here"): those default to unset, so nothing fake is ever dialled.
// PRODUCTION_MODE and ICE_TRANSPORT_POLICY default to the development values ("false", "all"),
// since the production template sets both explicitly.

export type ValueKind =
  | 'host'
  | 'port'
  | 'ms'
  | 'bool'
  | 'policy'
  | 'stun-list'
  | 'turn-list'
  | 'http-url'
  /** ws(s):// or http(s):// naming a signaling server or the front door in front of it. */
  | 'signaling-url'
  | 'redis-url'
  | 'path'
  | 'text'
  | 'email'
  | 'count'
  /** One on-call escalation level (src/config/oncall.ts). */
  | 'oncall';

export interface KeySpec {
  key: string;
  kind: ValueKind;
  default: string;
  secret?: boolean;
  describe: string;
  /** For 'ms': the least value accepted (every 'ms' value is at most 2^31-1, Node's timer limit). */
  min?: number;
}

export const CONFIG_KEYS: readonly KeySpec[] = [
  {
    key: 'SIGNALING_HOST',
    kind: 'host',
    default: '0.0.0.0',
    describe: 'address the signaling server listens on',
  },
  { key: 'SIGNALING_PORT', kind: 'port', default: '8443', describe: 'signaling port (HTTP and WebSocket)' },
  { key: 'SIGNALING_TLS_CERT', kind: 'path', default: '', describe: 'PEM certificate for wss/https' },
  { key: 'SIGNALING_TLS_KEY', kind: 'path', default: '', describe: 'PEM private key for wss/https' },
  {
    key: 'IFMESH_CA_FILE',
    kind: 'path',
    default: '',
    describe:
      'PEM file of the CA (private or self-signed) that signed the signaling and witness certificates: every https:// and wss:// connection of ifmesh and its agents verifies against it as well as the system CAs (--ca FILE overrides; empty: the system CAs only)',
  },
  {
    key: 'SIGNALING_PUBLIC_URL',
    kind: 'signaling-url',
    default: '',
    describe:
      "the URL agents dial, e.g. wss://signaling.example.com:8440 (deploy's nginx answers to its host name as server_name); empty: nginx, else the instances, on SIGNALING_HOST",
  },
  {
    key: 'STUN_SERVERS',
    kind: 'stun-list',
    default: 'stun:stun.l.google.com:19302,stun:stun1.l.google.com:19302',
    describe: 'comma-separated stun: URLs',
  },
  {
    key: 'TURN_SERVERS',
    kind: 'turn-list',
    default: '',
    describe: 'comma-separated turn:/turns: URLs, most preferred first',
  },
  { key: 'TURN_USERNAME', kind: 'text', default: '', describe: 'TURN long-term credential user' },
  {
    key: 'TURN_PASSWORD',
    kind: 'text',
    default: '',
    secret: true,
    describe: 'TURN long-term credential password',
  },
  {
    key: 'TURN_FALLBACK_TIMEOUT_MS',
    kind: 'ms',
    default: '5000',
    describe: 'ms without a direct path before relaying',
  },
  {
    key: 'AGENT_RECONNECT_MAX_MS',
    kind: 'ms',
    default: '30000',
    min: 1000,
    describe: 'longest wait between an agent’s attempts to reach signaling (doubling from 1 s)',
  },
  {
    key: 'AGENT_ICE_ADDRESSES',
    kind: 'text',
    default: '',
    describe:
      'comma-separated IPv4 addresses or interface names an agent gathers ICE candidates on (e.g. 10.0.1.2 or eth0; empty: every interface)',
  },
  { key: 'PRODUCTION_MODE', kind: 'bool', default: 'false', describe: 'enforce the production rules' },
  { key: 'ICE_TRANSPORT_POLICY', kind: 'policy', default: 'all', describe: '"all" or "relay"' },
  {
    key: 'ALLOW_SELF_SIGNED_CERTS',
    kind: 'bool',
    default: 'false',
    describe: 'accept self-signed certificates',
  },
  {
    key: 'ENABLE_CERT_VALIDATION',
    kind: 'bool',
    default: 'true',
    describe: 'validate DTLS/TLS certificates',
  },
  { key: 'ENABLE_SRTP_KEY_ROTATION', kind: 'bool', default: 'true', describe: 'rotate keys periodically' },
  {
    key: 'SRTP_KEY_ROTATION_INTERVAL_MS',
    kind: 'ms',
    default: '86400000',
    describe: 'key rotation interval',
  },
  {
    key: 'IF_WITNESS_ENDPOINT',
    kind: 'http-url',
    default: 'http://127.0.0.1:8080',
    describe: 'IF.witness base URL',
  },
  {
    key: 'IF_WITNESS_API_KEY',
    kind: 'text',
    default: '',
    secret: true,
    describe: 'bearer key for witness writes',
  },
  {
    key: 'IF_WITNESS_ADMIN_KEY',
    kind: 'text',
    default: '',
    secret: true,
    describe:
      'bearer key for witness admin calls (cleanup); `witness serve` without it lets IF_WITNESS_API_KEY do them',
  },
  {
    key: 'WITNESS_QUERY_TOKEN',
    kind: 'text',
    default: '',
    secret: true,
    describe: 'bearer token /api/query needs when set on `witness serve`; given by clients that query',
  },
  {
    key: 'GRAFANA_DATASOURCE_URL',
    kind: 'http-url',
    default: 'http://prometheus:9090',
    describe: 'Prometheus URL',
  },
  { key: 'ALERT_EMAIL', kind: 'email', default: '', describe: 'where alerts are mailed' },
  {
    key: 'PAGERDUTY_INTEGRATION_KEY',
    kind: 'text',
    default: '',
    secret: true,
    describe: 'PagerDuty Events v2 key',
  },
  {
    key: 'SIGNALING_CLUSTER_URL',
    kind: 'redis-url',
    default: '',
    describe:
      'redis://host:port shared by signaling instances (one mesh across instances); empty: standalone',
  },
  {
    key: 'SIGNALING_CLUSTER_SECRET',
    kind: 'text',
    default: '',
    secret: true,
    describe:
      'the secret every cluster message is sealed with (HMAC); the same on every instance, required in production',
  },
  {
    key: 'SIGNALING_URLS',
    kind: 'text',
    default: '',
    describe:
      'the signaling instances ifmesh operates but did not start, as NAME=URL pairs (comma-separated; wss:// or ws://); empty: the instances in the state dir',
  },
  {
    key: 'SIGNALING_FRONT_DOOR',
    kind: 'text',
    default: '',
    describe: 'the URL agents connect to in front of SIGNALING_URLS (nginx, a load balancer); empty: none',
  },
  {
    key: 'SIGNALING_ALLOW_KEYS',
    kind: 'path',
    default: '',
    describe:
      'allow-list of the agents that may register, one `PUBLIC_KEY AGENT_ID` pair per line (`signaling serve --allow-keys`); required in production',
  },
  {
    key: 'SIGNALING_ADMIN_TOKEN',
    kind: 'text',
    default: '',
    secret: true,
    describe: 'bearer token for /admin/*',
  },
  {
    key: 'WITNESS_DB_URL',
    kind: 'text',
    default: '',
    // A postgres:// URL may carry a password.
    secret: true,
    describe: 'postgres://USER@HOST:PORT/DB for `witness serve` (empty: SQLite)',
  },
  // Incident notifications (src/ops/incident/notify/).
  {
    key: 'PAGERDUTY_EVENTS_URL',
    kind: 'http-url',
    default: 'https://events.pagerduty.com/v2/enqueue',
    describe: 'PagerDuty Events API v2 endpoint (PAGERDUTY_INTEGRATION_KEY is the routing key)',
  },
  {
    key: 'SLACK_WEBHOOK_URL',
    kind: 'http-url',
    default: '',
    // The webhook's path is its credential.
    secret: true,
    describe: 'Slack incoming webhook for incident escalation level 2 (empty: no Slack)',
  },
  {
    key: 'SMTP_URL',
    kind: 'text',
    default: '',
    // smtp://user:password@host:port carries a password.
    secret: true,
    describe: 'smtp(s)://[USER:PASS@]HOST:PORT mailing ALERT_EMAIL when a P1 stays open over an hour',
  },
  {
    key: 'SLACK_INCIDENT_CHANNEL',
    kind: 'text',
    default: '#incident-response',
    describe:
      "the runbook's team channel: `incident p1` posts its step-5 message there (the webhook's own channel wins on Slack apps that ignore `channel`)",
  },
  // The runbook's Contact Information, one level per key (src/config/oncall.ts); an empty value drops the level.
  {
    key: 'ONCALL_LEVEL_1',
    kind: 'oncall',
    default: 'On-Call Engineer; rotation=on-call; via=pagerduty; respond=15m; when=declared',
    describe:
      'escalation level 1: ROLE; person=NAME or rotation=NAME; via=pagerduty,slack[:@mention],email[:address]; respond=15m; when=declared | L<n> unavailable | [P1] > 1h',
  },
  {
    key: 'ONCALL_LEVEL_2',
    kind: 'oncall',
    default: 'Engineering Lead; via=slack:@webrtc-oncall; respond=30m; when=L1 unavailable',
    describe:
      'escalation level 2 (the runbook: page if level 1 is unavailable, i.e. its page failed or it did not acknowledge in time)',
  },
  {
    key: 'ONCALL_LEVEL_3',
    kind: 'oncall',
    default: 'VP Engineering; via=email; respond=1h; when=P1 > 1h',
    describe:
      'escalation level 3 (the runbook: page for P1 incidents lasting over an hour; via=email without an address mails ALERT_EMAIL)',
  },
  // Maintenance and certificate renewal (src/ops/maintenance/, src/ops/certs/).
  {
    key: 'MAINTENANCE_MAX_AGENTS',
    kind: 'count',
    default: '100',
    describe:
      'agents the mesh is sized for: weekly maintenance measures capacity headroom against it (install-cron writes it into the cron line)',
  },
  {
    key: 'CERTBOT_CONFIG_DIR',
    kind: 'path',
    default: '',
    describe: "certbot's --config-dir, holding live/<name>/ (empty: certbot's default, /etc/letsencrypt)",
  },
];

export const KEY_SPECS: ReadonlyMap<string, KeySpec> = new Map(CONFIG_KEYS.map((s) => [s.key, s]));

export const SECRET_KEYS: ReadonlySet<string> = new Set(
  CONFIG_KEYS.filter((s) => s.secret).map((s) => s.key),
);

/** Values the runbook's template ships as placeholders; in production they are errors. */
export const PLACEHOLDERS: ReadonlySet<string> = new Set([
  'username_here',
  'password_here',
  'your_api_key_here',
  'your_integration_key',
  '/path/to/cert.pem',
  '/path/to/key.pem',
]);
