/** `tun.disabled: true`: no device and no privileges (rootless lighthouses and relays). */
import type { Inside } from './inside';

export class DisabledInside implements Inside {
  readonly kind = 'disabled' as const;
  readonly name = 'disabled';

  queueFd(): number {
    return -1;
  }

  async activate(): Promise<void> {}

  close(): void {}
}
