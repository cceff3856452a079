import { troubleshootCommand } from './tree.js';

export default troubleshootCommand(
  'dtls',
  [{ name: '<agent>' }, { name: '<peer>' }],
  'certificate and signature failures (tree 4; troubleshoot-dtls-validation.sh)',
  ['ifmesh troubleshoot dtls agent-1 agent-2'],
);
