/** Counters the supervisor itself increments (handshakes it sends, tunnels it tears down); merged at scrape time. */
export class SupervisorCounters {
  private readonly values = new Map<string, number>();

  inc(name: string, by = 1): void {
    this.values.set(name, (this.values.get(name) ?? 0) + by);
  }

  get(name: string): number {
    return this.values.get(name) ?? 0;
  }

  entries(): IterableIterator<[string, number]> {
    return this.values.entries();
  }
}
