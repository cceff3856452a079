/** Every lab command's --name. */
export const LAB_NAME = {
  flags: '--name <lab>',
  description: 'the lab (namespaces ifmesh-lab-<lab>-*)',
  default: 'main',
};
