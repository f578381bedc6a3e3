/**
 * The bound on what a routine hands up to the supervisor. process.send never refuses: when the supervisor's one
 * event loop falls behind (a handshake flood answered at its own pace), every message waits in this process's
 * memory until the channel takes it, without limit. So the messages still waiting are counted (a send's callback
 * runs once the channel took it), and past MAX_IPC_BACKLOG the datagrams handed up (meta packets: handshakes,
 * lighthouse, test, closeTunnel, recvError) are shed, as a full socket would drop them; the peer retries as it would
 * after a loss. Everything else (tunnel requests, roaming, log lines, ready) always goes: each is rare and its loss
 * would cost state. What was shed is counted (`routine.dropped.ipc_backlog`) by the data path.
 */
import type { RoutineToSupervisor } from '../shared/ipc/messages';

/** Messages waiting for the channel before datagrams are shed (about a second of handshakes at the limiter's rate). */
export const MAX_IPC_BACKLOG = 256;

export class IpcBacklog {
  private waiting = 0;
  private shed = 0;

  constructor(
    /** Hands `msg` to the channel; `taken` runs once the channel took it (or failed to: the count must go down). */
    private readonly sendRaw: (msg: RoutineToSupervisor, taken: () => void) => void,
    private readonly max = MAX_IPC_BACKLOG,
  ) {}

  send(msg: RoutineToSupervisor): void {
    if (msg.type === 'meta' && this.waiting >= this.max) {
      this.shed++;
      return;
    }
    this.waiting++;
    this.sendRaw(msg, () => {
      this.waiting--;
    });
  }

  /** Messages handed to the channel and not yet taken. */
  get backlog(): number {
    return this.waiting;
  }

  /** How many were shed since the last call. */
  takeShed(): number {
    const n = this.shed;
    this.shed = 0;
    return n;
  }
}
