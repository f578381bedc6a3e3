/**
 * Relay set-up in the supervisor (src/supervisor/relay-manager.ts) against nebula-spec §5.8 and Go 1.6.1's
 * relay_manager.go and the relay part of handshake_manager.go's handleOutbound, in the three roles:
 *   A (wants B, told by the lighthouse that R relays for B), R (relay.am_relay), B (the target).
 * Each node is a RelayManager over a recording environment (fixtures/relay-node.ts): the NebulaControl payloads it
 * sends (raw bytes, checked against hand-built proto3 where the index is ours to know, and decoded), the relay frames
 * it sends, the handshakes it starts and the route tables it publishes to the routines. The trio test wires three
 * managers to each other. Tunnels here are v1 (1.6.1's); the v2 generation is relay-v2.test.ts.
 * print-relays (console-relays.ts) is checked on the tables those flows leave.
 */
import t from 'tap';
import { ParsedArgs } from '../../src/shared/console-commands';
import { ControlType } from '../../src/shared/protocol/control';
import type { ConsoleParts } from '../../src/supervisor/console';
import { relayCommands, relaysJson } from '../../src/supervisor/console-relays';
import type { RelayRoute } from '../../src/shared/ipc/messages';
import { A, B, goControl, ip, node, R, R2, R3, request, response, STAGE1, trio, tunnel } from './fixtures/relay-node';

t.test('A', async (t) => {
  t.test('no tunnel to the relay: a handshake to it, and no request yet', async (t) => {
    const a = node(A);
    a.relaysFor.set(B, [R]);
    a.rm.forHandshake(B, STAGE1);
    t.same(a.handshakes, [R]);
    t.same(a.controls, []);
    t.same(a.relays(), [], 'no relay allocated');
  });

  t.test('a tunnel to the relay that is itself relayed counts as none (Go: relayHostInfo.remote == nil)', async (t) => {
    const a = node(A, { tunnels: [tunnel(R, R2)] });
    a.relaysFor.set(B, [R]);
    a.rm.forHandshake(B, STAGE1);
    t.same(a.controls, [], 'no CreateRelayRequest over a relayed tunnel');
    t.same(a.relays(), []);
    t.same(a.handshakes, [R], 'a handshake to the relay (a no-op while a tunnel exists, as f.Handshake in Go)');
  });

  t.test('the target and ourselves are never used as relays; use_relays off (or am_relay) asks no one', async (t) => {
    const a = node(A, { tunnels: [tunnel(R), tunnel(B)] });
    a.relaysFor.set(B, [B, A]);
    a.rm.forHandshake(B, STAGE1);
    t.same([a.controls, a.handshakes, a.relays()], [[], [], []]);
    const off = node(A, { useRelays: false, tunnels: [tunnel(R)] });
    off.relaysFor.set(B, [R]);
    off.rm.forHandshake(B, STAGE1);
    t.same([off.controls, off.handshakes, off.relays()], [[], [], []]);
  });

  t.test('first attempt: a terminal relay, requested, and CreateRelayRequest to R; re-sent unchanged while requested', async (t) => {
    const a = node(A, { tunnels: [tunnel(R)] });
    a.relaysFor.set(B, [R]);
    a.rm.forHandshake(B, STAGE1);
    const relays = a.relays();
    t.equal(relays.length, 1);
    const iA = relays[0]!.localIndex;
    t.ok(iA > 0 && iA <= 0xffffffff, 'a non-zero uint32 index');
    t.same(relays[0], { localIndex: iA, remoteIndex: 0, kind: 'terminal', state: 'requested', hostVpnIp: R, peerVpnIp: B });
    t.same(a.controls.map((c) => [c.to, c.hex]), [[R, goControl(1, iA, 0, B, A)]], 'Go\'s bytes: Type=1, Initiator=iA, RelayToIp=B, RelayFromIp=A');
    t.same(a.frames, [], 'no frame before the relay is established');
    t.same(a.published, [], 'nothing for the routines yet');

    a.rm.forHandshake(B, STAGE1);
    t.same(a.controls.map((c) => [c.to, c.hex]), [[R, goControl(1, iA, 0, B, A)], [R, goControl(1, iA, 0, B, A)]], 'the same request again');
    t.equal(a.relays().length, 1, 'no second relay');
  });

  t.test('R\'s response establishes it: published to the routines, and the next attempt goes through R as a frame', async (t) => {
    const a = node(A, { tunnels: [tunnel(R)] });
    a.relaysFor.set(B, [R]);
    a.rm.forHandshake(B, STAGE1);
    const iA = a.relays()[0]!.localIndex;
    a.rx(R, response(iA, 0x777, A, B));
    t.same(a.relays(), [{ localIndex: iA, remoteIndex: 0x777, kind: 'terminal', state: 'established', hostVpnIp: R, peerVpnIp: B }]);
    t.same(a.published, [[{ localIndex: iA, fromVpnIp: R, kind: 'terminal', remoteIndex: 0x777 }]]);
    t.same(a.rm.routes(), a.published[0]);
    a.controls.length = 0;
    a.rm.forHandshake(B, STAGE1);
    t.same(a.frames, [{ via: R, remoteIndex: 0x777, datagram: STAGE1.toString('hex') }], 'stage 1 in a frame to R\'s index');
    t.same(a.controls, [], 'no more requests');
  });

  t.test('a response for an unknown index, or from a host that does not carry that relay, changes nothing', async (t) => {
    const a = node(A, { tunnels: [tunnel(R), tunnel(R2)] });
    a.relaysFor.set(B, [R]);
    a.rm.forHandshake(B, STAGE1);
    const iA = a.relays()[0]!.localIndex;
    a.rx(R, response((iA + 1) >>> 0 || 1, 0x777, A, B));
    a.rx(R2, response(iA, 0x777, A, B));
    t.equal(a.relays()[0]!.state, 'requested');
    t.equal(a.relays()[0]!.remoteIndex, 0);
    t.same(a.published, []);
    t.ok(a.logs.some((l) => l.msg === 'relayManager EstablishRelay relayForByIdx not found'), 'logged as Go does');
  });

  t.test('every relay the target named is asked, each with its own index', async (t) => {
    const a = node(A, { tunnels: [tunnel(R), tunnel(R2)] });
    a.relaysFor.set(B, [R, R2, R3]);
    a.rm.forHandshake(B, STAGE1);
    t.same(a.handshakes, [R3], 'no tunnel to R3: handshake to it');
    const byHost = new Map(a.relays().map((r) => [r.hostVpnIp, r.localIndex]));
    t.same([...byHost.keys()].sort(), [R, R2].sort());
    t.not(byHost.get(R), byHost.get(R2));
    t.same(
      a.controls.map((c) => [c.to, c.hex]),
      [
        [R, goControl(1, byHost.get(R)!, 0, B, A)],
        [R2, goControl(1, byHost.get(R2)!, 0, B, A)],
      ],
    );
  });
});

t.test('B (the target)', async (t) => {
  t.test('a request naming us: a terminal relay, established at once, and CreateRelayResponse (am_relay not needed)', async (t) => {
    const b = node(B, { amRelay: false, tunnels: [tunnel(R)] });
    b.rx(R, request(0x4242, A, B));
    const relays = b.relays();
    t.equal(relays.length, 1);
    const iB = relays[0]!.localIndex;
    t.same(relays[0], { localIndex: iB, remoteIndex: 0x4242, kind: 'terminal', state: 'established', hostVpnIp: R, peerVpnIp: A });
    t.same(b.published, [[{ localIndex: iB, fromVpnIp: R, kind: 'terminal', remoteIndex: 0x4242 }]]);
    t.same(b.controls.map((c) => [c.to, c.hex]), [[R, goControl(2, 0x4242, iB, B, A)]], 'Responder=iB, Initiator=the request\'s, RelayFromIp=A, RelayToIp=B');
  });

  t.test('the same request again is answered with the same index; a new initiator index replaces the stale relay', async (t) => {
    const b = node(B, { tunnels: [tunnel(R)] });
    b.rx(R, request(0x4242, A, B));
    const iB = b.relays()[0]!.localIndex;
    b.rx(R, request(0x4242, A, B));
    t.equal(b.relays().length, 1);
    t.same(b.controls[1]!.m, response(0x4242, iB, A, B));

    b.rx(R, request(0x5151, A, B));
    const relays = b.relays();
    t.equal(relays.length, 1, 'the stale one is gone');
    t.not(relays[0]!.localIndex, iB, 'a fresh local index');
    t.equal(relays[0]!.remoteIndex, 0x5151);
    t.same(b.controls[2]!.m, response(0x5151, relays[0]!.localIndex, A, B));
    t.same(b.rm.routes(), [{ localIndex: relays[0]!.localIndex, fromVpnIp: R, kind: 'terminal', remoteIndex: 0x5151 }]);
  });
});

t.test('R (the relay)', async (t) => {
  t.test('without relay.am_relay a request for someone else is ignored; am_relay is re-read (reloadable)', async (t) => {
    const r = node(R, { amRelay: false, tunnels: [tunnel(A), tunnel(B)] });
    r.rx(A, request(0x1111, A, B));
    t.same([r.controls, r.handshakes, r.relays(), r.published], [[], [], [], []]);
    r.setAmRelay(true);
    r.rx(A, request(0x1111, A, B));
    t.equal(r.controls.length, 1, 'acted on after the reload');
  });

  t.test('no tunnel to the target: a handshake to it, nothing allocated (A asks again on its next attempt)', async (t) => {
    const r = node(R, { amRelay: true, tunnels: [tunnel(A)] });
    r.rx(A, request(0x1111, A, B));
    t.same(r.handshakes, [B]);
    t.same([r.controls, r.relays()], [[], []]);
  });

  t.test('a tunnel to the target that is itself relayed: ignored (Go: peer.remote == nil; relays are one hop)', async (t) => {
    const r = node(R, { amRelay: true, tunnels: [tunnel(A), tunnel(B, R2)] });
    r.rx(A, request(0x1111, A, B));
    t.same([r.controls, r.relays(), r.published], [[], [], []]);
  });

  t.test('a request whose RelayFromIp is not the host that sent it is refused (Go trusts it; we do not)', async (t) => {
    const r = node(R, { amRelay: true, tunnels: [tunnel(A), tunnel(B), tunnel(R2)] });
    r.rx(R2, request(0x1111, A, B));
    t.same([r.controls, r.relays()], [[], []]);
  });

  t.test('the whole exchange: ask B, wait, answer A once B answered; forwarding routes both ways', async (t) => {
    const r = node(R, { amRelay: true, tunnels: [tunnel(A), tunnel(B)] });
    const iA = 0x1111;
    r.rx(A, request(iA, A, B));
    const sideB = () => r.relays().find((x) => x.hostVpnIp === B)!;
    const sideA = () => r.relays().find((x) => x.hostVpnIp === A)!;
    const iRB = sideB().localIndex;
    const iRA = sideA().localIndex;
    t.same(sideB(), { localIndex: iRB, remoteIndex: 0, kind: 'forwarding', state: 'requested', hostVpnIp: B, peerVpnIp: A });
    t.same(sideA(), { localIndex: iRA, remoteIndex: iA, kind: 'forwarding', state: 'requested', hostVpnIp: A, peerVpnIp: B });
    t.same(r.controls.map((c) => [c.to, c.hex]), [[B, goControl(1, iRB, 0, B, A)]], 'CreateRelayRequest to B: Initiator=iRB, RelayFromIp=A, RelayToIp=B');
    t.same(r.rm.routes(), [], 'nothing routed while requested');

    r.rx(A, request(iA, A, B));
    t.same(r.controls.map((c) => [c.to, c.hex]), [[B, goControl(1, iRB, 0, B, A)], [B, goControl(1, iRB, 0, B, A)]], 'A asked again: B is asked again, same index; A gets nothing yet');
    t.equal(r.relays().length, 2);

    const iB = 0x2222;
    r.controls.length = 0;
    r.rx(B, response(iRB, iB, A, B));
    t.same(r.controls.map((c) => [c.to, c.hex]), [[A, goControl(2, iA, iRA, B, A)]], 'CreateRelayResponse to A: Responder=iRA, Initiator=iA');
    t.equal(sideB().state, 'established');
    t.equal(sideB().remoteIndex, iB);
    t.equal(sideA().state, 'established');
    const routes = [
      { localIndex: iRA, fromVpnIp: A, kind: 'forwarding', remoteIndex: iA, targetVpnIp: B, targetRemoteIndex: iB },
      { localIndex: iRB, fromVpnIp: B, kind: 'forwarding', remoteIndex: iB, targetVpnIp: A, targetRemoteIndex: iA },
    ];
    const byIndex = (x: RelayRoute[]) => [...x].sort((p, q) => p.localIndex - q.localIndex);
    t.same(byIndex(r.rm.routes()), byIndex(routes as RelayRoute[]));
    t.same(byIndex(r.published.at(-1)!), byIndex(routes as RelayRoute[]), 'published to the routines');

    r.controls.length = 0;
    r.rx(A, request(iA, A, B));
    t.same(r.controls.map((c) => [c.to, c.hex]), [[A, goControl(2, iA, iRA, B, A)]], 'a repeated request once established: answered at once, B not asked');
  });

  t.test('A asks with a new index (it restarted): the A side is replaced, and answered at once since B is established', async (t) => {
    // Go 1.6.1 re-adds the A side as Requested here and never answers it (B is not asked again): a stuck relay.
    const r = node(R, { amRelay: true, tunnels: [tunnel(A), tunnel(B)] });
    r.rx(A, request(0x1111, A, B));
    const iRB = r.relays().find((x) => x.hostVpnIp === B)!.localIndex;
    const oldIRA = r.relays().find((x) => x.hostVpnIp === A)!.localIndex;
    r.rx(B, response(iRB, 0x2222, A, B));
    r.controls.length = 0;
    r.rx(A, request(0x3333, A, B));
    const sideA = r.relays().find((x) => x.hostVpnIp === A)!;
    t.not(sideA.localIndex, oldIRA);
    t.same(sideA, { localIndex: sideA.localIndex, remoteIndex: 0x3333, kind: 'forwarding', state: 'established', hostVpnIp: A, peerVpnIp: B });
    t.equal(r.relays().length, 2, 'the stale A side is gone');
    t.same(r.controls.map((c) => c.m), [response(0x3333, sideA.localIndex, A, B)]);
    t.ok(r.rm.routes().some((x) => x.fromVpnIp === B && x.targetRemoteIndex === 0x3333), 'frames from B now go to A\'s new index');
    t.notOk(r.rm.routes().some((x) => x.localIndex === oldIRA));
  });
});

t.test('A, R and B together: one handshake attempt sets the relay up; the next goes through it; indexes line up', async (t) => {
  const { a, r, b, pump } = trio();
  a.rm.forHandshake(B, STAGE1);
  pump();
  const [ra] = a.rm.routes();
  const [rb] = b.rm.routes();
  const rr = r.rm.routes();
  t.ok(ra && rb, 'both ends established');
  const rSideA = rr.find((x) => x.fromVpnIp === A)!;
  const rSideB = rr.find((x) => x.fromVpnIp === B)!;
  t.equal(ra!.remoteIndex, rSideA.localIndex, 'A addresses frames to R\'s A-side index');
  t.equal(rSideA.targetRemoteIndex, rb!.localIndex, 'R passes them to B\'s index');
  t.equal(rb!.remoteIndex, rSideB.localIndex, 'B addresses frames to R\'s B-side index');
  t.equal(rSideB.targetRemoteIndex, ra!.localIndex, 'R passes them to A\'s index');
  t.equal(rSideA.remoteIndex, ra!.localIndex);
  t.equal(rSideB.remoteIndex, rb!.localIndex);
  t.same(a.controls.map((c) => c.m.type), [ControlType.CreateRelayRequest]);
  t.same(b.controls.map((c) => c.m.type), [ControlType.CreateRelayResponse]);
  t.same(r.controls.map((c) => [c.to, c.m.type]), [[B, ControlType.CreateRelayRequest], [A, ControlType.CreateRelayResponse]]);

  a.rm.forHandshake(B, STAGE1);
  t.same(a.frames, [{ via: R, remoteIndex: rSideA.localIndex, datagram: STAGE1.toString('hex') }]);

  // B answers the handshake the way it came (sendVia with what the routine marked the packet with).
  b.rm.sendVia({ relayVpnIp: R, remoteIndex: rb!.remoteIndex }, Buffer.from('stage2'));
  t.same(b.frames, [{ via: R, remoteIndex: rSideB.localIndex, datagram: Buffer.from('stage2').toString('hex') }]);
});

t.test('sendVia without a tunnel to the relay sends nothing', async (t) => {
  const b = node(B);
  b.rm.sendVia({ relayVpnIp: R, remoteIndex: 9 }, Buffer.from('x'));
  t.same(b.frames, []);
});

t.test('tunnelGone drops the relays riding that tunnel and those forwarding to it, and republishes', async (t) => {
  const { a, r, b, pump } = trio();
  a.rm.forHandshake(B, STAGE1);
  pump();
  t.equal(r.relays().length, 2);

  const before = r.published.length;
  r.rm.tunnelGone(ip('10.1.0.77'));
  t.equal(r.published.length, before, 'an unrelated tunnel: nothing republished');

  r.rm.tunnelGone(B);
  t.same(r.relays(), [], 'both halves gone (the A side forwarded to B)');
  t.same(r.published.at(-1), []);

  const oldIA = a.relays()[0]!.localIndex;
  a.rm.tunnelGone(R);
  t.same(a.relays(), []);
  t.same(a.published.at(-1), []);
  a.controls.length = 0;
  a.rm.forHandshake(B, STAGE1);
  t.equal(a.controls.length, 1, 'the next attempt asks again');
  t.not(a.controls[0]!.m.initiatorRelayIndex, oldIA, 'under a new index');

  b.rm.tunnelGone(A);
  t.equal(b.relays().length, 1, 'B\'s terminal relay rides the tunnel to R, not to A: kept');
});

t.test('the relay table is bounded: past capacity a relay is refused, logged, and nothing is sent for it', async (t) => {
  const a = node(A, { capacity: 2, tunnels: [tunnel(R), tunnel(R2), tunnel(R3)] });
  a.relaysFor.set(B, [R, R2, R3]);
  a.rm.forHandshake(B, STAGE1);
  t.equal(a.relays().length, 2);
  t.same(a.controls.map((c) => c.to), [R, R2]);
  t.ok(a.logs.some((l) => l.level === 'warning' && l.msg === 'Relay table is full, refusing a relay'));

  const b = node(B, { capacity: 1, tunnels: [tunnel(R)] });
  b.rx(R, request(0x10, A, B));
  b.rx(R, request(0x20, ip('10.1.0.20'), B));
  t.equal(b.relays().length, 1);
  t.same(b.controls.map((c) => c.m.initiatorRelayIndex), [0x10], 'the second origin is not answered');
});

t.test('malformed or unknown control messages are ignored without throwing', async (t) => {
  const r = node(R, { amRelay: true, tunnels: [tunnel(A), tunnel(B)] });
  t.doesNotThrow(() => r.rm.onControl(A, Buffer.from('10ff', 'hex')));
  t.ok(r.logs.some((l) => l.msg === 'Failed to unmarshal control message'));
  r.rx(A, { type: ControlType.None, initiatorRelayIndex: 1, responderRelayIndex: 0, relayFromIp: A, relayToIp: B });
  r.rx(A, { type: 9, initiatorRelayIndex: 1, responderRelayIndex: 0, relayFromIp: A, relayToIp: B });
  t.same([r.controls, r.relays(), r.published, r.handshakes], [[], [], [], []]);
});

t.test('print-relays: one entry per host carrying relays, in Go\'s field names and order', async (t) => {
  const { a, r, pump } = trio();
  a.rm.forHandshake(B, STAGE1);
  pump();
  const [sideA, sideB] = [r.relays().find((x) => x.hostVpnIp === A)!, r.relays().find((x) => x.hostVpnIp === B)!];
  const direct = { get: (v: number) => (v === A || v === B ? tunnel(v) : undefined) };
  t.strictSame(relaysJson(r.rm, direct), {
    Relays: [
      { NebulaIp: '10.1.0.2', RelayForIps: [{ Error: null, Type: 'forwarding', State: 'established', PeerIp: '10.1.0.3', LocalIndex: sideA.localIndex, RemoteIndex: sideA.remoteIndex, RelayedThrough: null }] },
      { NebulaIp: '10.1.0.3', RelayForIps: [{ Error: null, Type: 'forwarding', State: 'established', PeerIp: '10.1.0.2', LocalIndex: sideB.localIndex, RemoteIndex: sideB.remoteIndex, RelayedThrough: null }] },
    ],
  });

  const iA = a.relays()[0]!;
  const relayedB = { get: (v: number) => (v === B ? tunnel(B, R) : v === R ? tunnel(R) : undefined) };
  const handlers = relayCommands(() => ({ relays: a.rm, hostmap: relayedB }));
  const text = handlers['print-relays']!(new ParsedArgs([], new Map(), false), {} as ConsoleParts);
  t.equal(
    text,
    `{"Relays":[{"NebulaIp":"10.1.0.9","RelayForIps":[{"Error":null,"Type":"terminal","State":"established","PeerIp":"10.1.0.3","LocalIndex":${iA.localIndex},"RemoteIndex":${iA.remoteIndex},"RelayedThrough":["10.1.0.9"]}]}]}\n`,
    'compact JSON, a newline after it (json.Encoder); the peer\'s tunnel goes through R',
  );
  const pretty = handlers['print-relays']!(new ParsedArgs([], new Map([['pretty', true]]), false), {} as ConsoleParts);
  t.match(pretty, /^\{\n {4}"Relays": \[\n {8}\{\n {12}"NebulaIp": "10\.1\.0\.9",/, '-pretty: four-space indent (enc.SetIndent("", "    "))');
  t.same(JSON.parse(pretty), JSON.parse(text));

  t.equal(r.rm.size, 2, 'size: one per relay (the hostmap.main.relayIndexes gauge)');
  t.equal(a.rm.size, 1);

  // Go's nil slices: no relays at all, or a peer's tunnel through no relay, print `null` rather than `[]`.
  const empty = node(A);
  t.equal(empty.rm.size, 0);
  t.strictSame(relaysJson(empty.rm, direct), { Relays: null });
  const emptyHandlers = relayCommands(() => ({ relays: empty.rm, hostmap: direct }));
  t.equal(emptyHandlers['print-relays']!(new ParsedArgs([], new Map(), false), {} as ConsoleParts), '{"Relays":null}\n');
});
