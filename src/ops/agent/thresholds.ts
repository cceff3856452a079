// The runbook's message-exchange targets, in a module of their own: command definitions show them
// as flag defaults without loading the exchange (and werift with it).

/** The runbook's targets: delivery ≥ 99.9 %, delivery p95 < 100 ms, no signature failure. */
export const EXCHANGE_THRESHOLDS = { delivery_ratio: 0.999, rtt_p95_ms: 100, signature_failures: 0 };
