/** The namespace helpers themselves: veth pair between two namespaces, spawned processes, cleanup. */
import t from 'tap';
import { existsSync } from 'node:fs';
import { prereqs } from '../helpers/prereq';
import { NetnsScope, execInNetns, waitFor, waitForLine } from '../helpers/netns';
import { Agent } from './fixtures/agent-client';

t.test('veth pair between two namespaces carries UDP; cleanup removes everything', async (t) => {
  if (!prereqs(t, ['root'])) return;
  // An explicit scope whose cleanup we run (and check) ourselves; the teardown registration is a safety net.
  const scope = new NetnsScope(t);
  const [a, b] = [await scope.createNetns(), await scope.createNetns()];
  t.match(a, new RegExp(`^nts-${process.pid}-\\d+$`), 'unique, pid-scoped name');
  const { ifA, ifB } = await scope.createVethPair(a, b, '10.210.0.1/24', '10.210.0.2/24');
  t.ok(ifA.length <= 15 && ifB.length <= 15, 'interface names fit IFNAMSIZ');
  t.match((await execInNetns(a, 'ip', ['addr', 'show', 'dev', ifA])).stdout, /inet 10\.210\.0\.1\/24/);

  const [agentA, agentB] = [await Agent.start(scope, a), await Agent.start(scope, b)];
  const rx = await agentB.call('udpSocket', { host: '10.210.0.2', port: 0, reusePort: false });
  const tx = await agentA.call('udpSocket', { host: '0.0.0.0', port: 0, reusePort: false });
  await agentA.call('sendUdp', { fd: tx.fd, ip: '10.210.0.2', port: rx.port, data: Buffer.from('over veth').toString('base64') });
  const got = await agentB.call('recvUdp', { fd: rx.fd, timeoutMs: 5000 });
  t.same(got && { ip: got.ip, port: got.port, data: Buffer.from(got.data, 'base64').toString() }, {
    ip: '10.210.0.1',
    port: tx.port,
    data: 'over veth',
  });

  const sleeper = scope.spawnInNetns(a, 'sh', ['-c', 'echo ready-$$; exec sleep 600']);
  const m = await waitForLine(sleeper, /^ready-(\d+)$/, 5000);
  t.equal(Number(m[1]), sleeper.pid, 'ip netns exec runs the command in place (same pid)');

  await scope.cleanup();
  t.not(sleeper.exitCode ?? sleeper.signalCode, null, 'spawned process killed');
  await waitFor(() => !existsSync(`/run/netns/${a}`) && !existsSync(`/run/netns/${b}`), 5000, 'namespaces deleted');
  t.pass('namespaces deleted');
});
