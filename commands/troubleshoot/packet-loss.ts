import { troubleshootCommand } from './tree.js';

export default troubleshootCommand(
  'packet-loss',
  [{ name: '<agent>' }],
  "AGENT's packet loss (tree 3; troubleshoot-packet-loss.sh)",
  ['ifmesh troubleshoot packet-loss agent-1 --json'],
);
