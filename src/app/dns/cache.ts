import type { Clock } from '../../time/clock.js';
import { nameKey } from './wire.js';

/**
 * The resolver's answer cache: TTL-bounded, entry-bounded (least recently used evicted first),
 * with RFC 2308 negative entries. An NXDOMAIN is a statement about the name, so it answers every
 * type (RFC 2308 §5); NODATA is about one name and type.
 */
export type CachedAnswer =
  | { readonly kind: 'positive'; readonly addresses: readonly string[]; readonly ttlS: number }
  | { readonly kind: 'nxdomain'; readonly ttlS: number }
  | { readonly kind: 'nodata'; readonly ttlS: number };

interface Entry {
  readonly answer: 'positive' | 'nxdomain' | 'nodata';
  readonly addresses: readonly string[];
  readonly expiresAt: number;
}

const NXDOMAIN_TYPE = -1;

export class DnsCache {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly clock: Clock,
    private readonly maxEntries: number,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** The live answer for `name`/`type`, with the remaining TTL in whole seconds. */
  get(name: string, type: number): CachedAnswer | undefined {
    if (this.entries.size === 0) return undefined;
    const nx = this.lookup(key(name, NXDOMAIN_TYPE));
    if (nx) return { kind: 'nxdomain', ttlS: this.remaining(nx) };
    const entry = this.lookup(key(name, type));
    if (!entry) return undefined;
    const ttlS = this.remaining(entry);
    return entry.answer === 'positive' ? { kind: 'positive', addresses: entry.addresses, ttlS } : { kind: 'nodata', ttlS };
  }

  putPositive(name: string, type: number, addresses: readonly string[], ttlS: number): void {
    if (this.maxEntries <= 0) return;
    this.store(key(name, type), { answer: 'positive', addresses, expiresAt: this.clock.now() + ttlS * 1000 }, ttlS);
  }

  putNxdomain(name: string, ttlS: number): void {
    if (this.maxEntries <= 0) return;
    this.store(key(name, NXDOMAIN_TYPE), { answer: 'nxdomain', addresses: [], expiresAt: this.clock.now() + ttlS * 1000 }, ttlS);
  }

  putNodata(name: string, type: number, ttlS: number): void {
    if (this.maxEntries <= 0) return;
    this.store(key(name, type), { answer: 'nodata', addresses: [], expiresAt: this.clock.now() + ttlS * 1000 }, ttlS);
  }

  clear(): void {
    this.entries.clear();
  }

  private remaining(entry: Entry): number {
    return Math.max(0, Math.ceil((entry.expiresAt - this.clock.now()) / 1000));
  }

  private lookup(k: string): Entry | undefined {
    const entry = this.entries.get(k);
    if (!entry) return undefined;
    this.entries.delete(k);
    if (entry.expiresAt <= this.clock.now()) return undefined;
    this.entries.set(k, entry); // most recently used goes last
    return entry;
  }

  private store(k: string, entry: Entry, ttlS: number): void {
    this.entries.delete(k);
    // RFC 1035 §3.2.1: TTL 0 means "use only for the transaction in progress".
    if (ttlS <= 0 || this.maxEntries <= 0) return;
    this.entries.set(k, entry);
    if (this.entries.size <= this.maxEntries) return;
    // Expired entries go first, then the least recently used.
    const now = this.clock.now();
    for (const [k2, e] of this.entries) if (e.expiresAt <= now) this.entries.delete(k2);
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
  }
}

function key(name: string, type: number): string {
  return `${type} ${nameKey(name)}`;
}
