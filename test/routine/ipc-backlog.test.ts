/**
 * The bound on a routine's channel to the supervisor (ipc-backlog.ts): past MAX_IPC_BACKLOG messages waiting, the
 * datagrams handed up are shed and counted; state-carrying messages always go; room comes back as the channel
 * takes messages. The data path adds what was shed to routine.dropped.ipc_backlog.
 */
import t from 'tap';
import type { RoutineToSupervisor } from '../../src/shared/ipc/messages';
import { IpcBacklog, MAX_IPC_BACKLOG } from '../../src/routine/ipc-backlog';
import { MemoryNode } from './fixtures/memory-node';

const meta = (n: number): RoutineToSupervisor => ({ type: 'meta', routine: 0, packet: { type: 0, subtype: 0, localIndex: 0, remoteIndex: 0, counter: n, fromIp: 0, fromPort: 0, data: new Uint8Array(1) } });

t.test('a channel that does not take messages: meta packets past the bound are shed, the rest still goes', async (t) => {
  const handed: RoutineToSupervisor[] = [];
  const pendingTaken: Array<() => void> = [];
  const channel = new IpcBacklog((msg, taken) => {
    handed.push(msg);
    pendingTaken.push(taken);
  });
  for (let i = 0; i < MAX_IPC_BACKLOG + 10; i++) channel.send(meta(i));
  t.equal(handed.length, MAX_IPC_BACKLOG, 'exactly the bound handed to the channel');
  t.equal(channel.backlog, MAX_IPC_BACKLOG);
  channel.send({ type: 'needTunnel', routine: 0, vpnIp: 1 });
  channel.send({ type: 'log', level: 'info', msg: 'x', fields: {} });
  t.same(handed.slice(-2).map((m) => m.type), ['needTunnel', 'log'], 'tunnel requests and log lines are never shed');
  t.equal(channel.takeShed(), 10, 'the ten meta packets past the bound were shed');
  t.equal(channel.takeShed(), 0, 'and counted once');
  // The channel takes three: the two that always go still wait too, so one more meta packet fits.
  for (const taken of pendingTaken.splice(0, 3)) taken();
  for (let i = 0; i < 5; i++) channel.send(meta(1000 + i));
  t.equal(handed.filter((m) => m.type === 'meta').length, MAX_IPC_BACKLOG + 1);
  t.equal(channel.takeShed(), 4);
  t.equal(channel.backlog, MAX_IPC_BACKLOG);
});

t.test('a channel that keeps up never sheds', async (t) => {
  let sent = 0;
  const channel = new IpcBacklog((_msg, taken) => {
    sent++;
    taken();
  });
  for (let i = 0; i < 10 * MAX_IPC_BACKLOG; i++) channel.send(meta(i));
  t.equal(sent, 10 * MAX_IPC_BACKLOG);
  t.equal(channel.takeShed(), 0);
  t.equal(channel.backlog, 0);
});

t.test('the data path counts what the main thread shed', async (t) => {
  const node = new MemoryNode({ vpnIp: '192.168.100.1', underlay: { ip: '10.0.0.1', port: 4242 } });
  node.datapath.control({ type: 'ipcShed', count: 7 });
  node.datapath.control({ type: 'ipcShed', count: 5 });
  t.equal(node.counter('routine.dropped.ipc_backlog'), 12);
});
