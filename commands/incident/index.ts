import { mount } from '../../src/cli/mount.js';
import { declare, KINDS } from './declare.js';
import { ack, escalate, resolve } from './lifecycle.js';
import { due, list } from './list.js';
import show from './show.js';

export const { definitions, register } = mount([
  ...KINDS.map(declare),
  list,
  due,
  show,
  resolve,
  escalate,
  ack,
]);
