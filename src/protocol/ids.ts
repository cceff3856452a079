/** Agent ids travel in URLs, file names and log lines: keep them to a safe, bounded alphabet. */
export const AGENT_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function isAgentId(value: unknown): value is string {
  return typeof value === 'string' && AGENT_ID_PATTERN.test(value);
}

export const AGENT_ID_RULE = '1-64 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit';
