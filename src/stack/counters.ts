/**
 * Per-layer counters: what came in, what went out, and every drop with its reason. Drops are
 * how malformed or unwanted input shows up — never as an exception.
 */
export class LayerCounters {
  received = 0;
  sent = 0;
  readonly dropped: Record<string, number> = {};

  drop(reason: string, count = 1): void {
    this.dropped[reason] = (this.dropped[reason] ?? 0) + count;
  }

  get totalDropped(): number {
    let n = 0;
    for (const k in this.dropped) n += this.dropped[k]!;
    return n;
  }

  snapshot(): LayerCountersSnapshot {
    return { received: this.received, sent: this.sent, dropped: { ...this.dropped } };
  }
}

export interface LayerCountersSnapshot {
  readonly received: number;
  readonly sent: number;
  readonly dropped: Readonly<Record<string, number>>;
}

export interface StackCounters {
  readonly ethernet: LayerCounters;
  readonly arp: LayerCounters;
  readonly ipv4: LayerCounters;
  readonly icmp: LayerCounters;
  readonly udp: LayerCounters;
}

export type StackCountersSnapshot = { readonly [K in keyof StackCounters]: LayerCountersSnapshot };

export function createCounters(): StackCounters {
  return { ethernet: new LayerCounters(), arp: new LayerCounters(), ipv4: new LayerCounters(), icmp: new LayerCounters(), udp: new LayerCounters() };
}
