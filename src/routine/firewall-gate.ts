/**
 * The data path's firewall decision: conntrack first, then the rules (nebula-spec §7.2–§7.5).
 *
 * A conntrack hit made under the current rules version is allowed at once. A hit made under an older version (a
 * SIGHUP reload happened since) is re-verified against the new rules of the entry's ORIGINAL direction: kept and
 * re-stamped when they still allow it, otherwise deleted and the packet judged afresh. That is how a reload keeps
 * conntrack without letting a now-forbidden flow continue.
 */
import { Firewall, type FirewallPacket, type FirewallPeer } from '../shared/firewall';
import { C } from '../shared/state/counters';
import { ConntrackTable, conntrackNow } from '../shared/state/conntrack';

/** 0 = allowed; otherwise the counter index of the drop reason. */
export type GateResult = number;
export const ALLOW = -1;

export class FirewallGate {
  constructor(
    private readonly conntrack: ConntrackTable,
    private firewall: Firewall,
  ) {}

  get rules(): Firewall {
    return this.firewall;
  }

  /** Swaps in a reloaded rule set; the conntrack table is kept (entries re-verify lazily). */
  setFirewall(fw: Firewall): void {
    this.firewall = fw;
  }

  /** Returns ALLOW or the counter index (C.*) of the reason the packet is dropped. */
  check(pkt: FirewallPacket, incoming: boolean, peer: FirewallPeer): number {
    const fw = this.firewall;
    const now = conntrackNow();
    const expiry = now + Math.ceil(fw.timeoutFor(pkt.proto) / 1000);
    const ct = this.conntrack;
    const entry = ct.lookup(pkt, now);
    if (entry >= 0) {
      if (ct.foundVersion === fw.rulesVersion) {
        ct.refresh(entry, pkt, expiry, fw.rulesVersion);
        return ALLOW;
      }
      if (fw.matchesRules(ct.foundIncoming ? 'in' : 'out', pkt, peer)) {
        ct.refresh(entry, pkt, expiry, fw.rulesVersion);
        return ALLOW;
      }
      ct.remove(entry, pkt);
    }
    const verdict = fw.allows(incoming ? 'in' : 'out', pkt, peer);
    if (verdict === 'allow') {
      this.conntrack.insert(pkt, incoming, fw.rulesVersion, expiry, now);
      return ALLOW;
    }
    if (verdict === 'drop_remote_ip') return incoming ? C['firewall.incoming.dropped.remote_ip'] : C['firewall.outgoing.dropped.remote_ip'];
    if (verdict === 'drop_local_ip') return incoming ? C['firewall.incoming.dropped.local_ip'] : C['firewall.outgoing.dropped.local_ip'];
    return incoming ? C['firewall.incoming.dropped.no_rule'] : C['firewall.outgoing.dropped.no_rule'];
  }
}
