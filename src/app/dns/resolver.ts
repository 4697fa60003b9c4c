import { isIPv6 } from 'node:net';
import type { Clock } from '../../time/clock.js';
import type { Random } from '../../time/random.js';
import { formatIpv4, tryParseIpv4, type Ipv4Address } from '../../wire/address.js';
import type { DatagramFactory, DatagramPeer, SocketError } from '../transport.js';
import { QueryPorts, type PortListener, type QueryPort } from './query-ports.js';
import { DnsCache } from './cache.js';
import { dnsError, type DnsErrorCode } from './errors.js';
import { DNS_DEFAULTS } from './options.js';
import { countDrop } from '../../stats/counters.js';
import {
  DNS_CLASS_IN,
  DnsRcode,
  DnsType,
  emitDnsQuery,
  formatIpv6,
  MAX_TCP_MESSAGE,
  nameKey,
  parseDnsMessage,
  sameName,
  type DnsMessage,
  type DnsRecord,
} from './wire.js';

/**
 * A stub resolver (RFC 1034 §5.3.1) over UDP with Node's `dns.promises` shape: `lookup`,
 * `resolve4`, `resolve6`, errors carrying Node's codes.
 *
 * Spoofing resistance (RFC 5452 §9): every query, including every retry, goes out with a fresh
 * random id from a random source port — a fresh one each time unless `queriesPerPort` lets a port
 * be reused, never one shared by two queries at once unless `concurrentPerPort` allows it — and a
 * reply is accepted only if it comes from the server and port it was sent to, carries the same id
 * and echoes the same question. Anything else is a counted drop; the query keeps waiting for the
 * genuine answer.
 */

export interface DnsServerAddress {
  readonly address: Ipv4Address;
  readonly port: number;
}

/**
 * Sends one DNS message over TCP and resolves with the reply message (without the length
 * prefixes: see tcp-framing.ts for a ready implementation over a net-compatible socket).
 */
export type TcpQuery = (server: DnsServerAddress, query: Uint8Array) => Promise<Uint8Array>;

export interface DnsResolverOptions {
  readonly transport: DatagramFactory;
  readonly clock: Clock;
  readonly random: Random;
  /**
   * '192.0.2.53', '192.0.2.53:5353', a numeric address, or an address/port pair — or a function
   * read at every query (e.g. `() => stack.dnsServers`, which DHCP keeps up to date).
   */
  readonly servers?: readonly (string | Ipv4Address | DnsServerAddress)[] | (() => readonly (string | Ipv4Address | DnsServerAddress)[]);
  readonly initialTimeoutMs?: number;
  readonly maxTimeoutMs?: number;
  readonly attempts?: number;
  readonly cacheEntries?: number;
  readonly maxCnameChain?: number;
  /** Retry over TCP when a reply is truncated (RFC 7766 §5). Without it the partial answer is used, uncached. */
  readonly tcpQuery?: TcpQuery;
  readonly tcpTimeoutMs?: number;
  readonly maxUdpMessage?: number;
  /**
   * Queries one source port carries, one at a time, before it is closed (c-ares's
   * `udp_max_queries`). 1, the default: a fresh random port for every query and retry (RFC 5452
   * §9.2). More saves a socket per query — 100 is the recommended setting over the host's own
   * sockets when lookups per second matter; see docs/dns.md for what reuse costs.
   */
  readonly queriesPerPort?: number;
  /**
   * Queries to one server outstanding on one source port at once, as c-ares puts every concurrent
   * query on its socket. 1, the default: concurrent queries never share a port (RFC 5452 §9.2).
   * More saves a socket's events per reply; a shared port's queries are told apart by their ids,
   * unique on the port, and their questions. Meant with `queriesPerPort` > 1 towards a resolver
   * on the host itself or a trusted LAN; see docs/dns.md for what sharing costs.
   */
  readonly concurrentPerPort?: number;
}

export interface LookupOptions {
  /** 4, 6, or 0 (default) for either: A first, AAAA when the name has no A records. */
  readonly family?: 0 | 4 | 6;
  readonly all?: boolean;
}

export interface LookupAddress {
  readonly address: string;
  readonly family: 4 | 6;
}

export interface RecordWithTtl {
  readonly address: string;
  readonly ttl: number;
}

export interface DnsResolverStats {
  queriesSent: number;
  repliesAccepted: number;
  timeouts: number;
  tcpRetries: number;
  cacheHits: number;
  cacheMisses: number;
  /** Replies dropped, by reason: 'wrong-source', 'wrong-id', 'wrong-question', 'not-response', 'between-queries' (at a reused port with no query), parse reasons, … */
  drops: Record<string, number>;
}

type Outcome =
  | { readonly kind: 'reply'; readonly message: DnsMessage; readonly partial: boolean }
  | { readonly kind: 'timeout' }
  | { readonly kind: 'error'; readonly code: DnsErrorCode; readonly detail: string }
  | { readonly kind: 'cancelled' };

interface Resolution {
  readonly addresses: string[];
  readonly ttlS: number;
}

export class DnsResolver {
  readonly stats: DnsResolverStats = {
    queriesSent: 0,
    repliesAccepted: 0,
    timeouts: 0,
    tcpRetries: 0,
    cacheHits: 0,
    cacheMisses: 0,
    drops: {},
  };

  private staticServers: DnsServerAddress[] = [];
  private serverSource: (() => readonly (string | Ipv4Address | DnsServerAddress)[]) | undefined;
  /** Index of the server that answered last: asked first next time (failover sticks). */
  private preferred = 0;
  private readonly cache: DnsCache;
  private readonly inFlight = new Map<string, Promise<Resolution>>();
  private readonly pending = new Set<{ cancel(): void }>();
  private readonly initialTimeoutMs: number;
  private readonly maxTimeoutMs: number;
  private readonly attempts: number;
  private readonly maxCnameChain: number;
  private readonly tcpTimeoutMs: number;
  private readonly maxUdpMessage: number;
  private readonly ports: QueryPorts;

  constructor(private readonly options: DnsResolverOptions) {
    this.initialTimeoutMs = options.initialTimeoutMs ?? DNS_DEFAULTS.initialTimeoutMs;
    this.maxTimeoutMs = options.maxTimeoutMs ?? DNS_DEFAULTS.maxTimeoutMs;
    this.attempts = Math.max(1, options.attempts ?? DNS_DEFAULTS.attempts);
    this.maxCnameChain = options.maxCnameChain ?? DNS_DEFAULTS.maxCnameChain;
    this.tcpTimeoutMs = options.tcpTimeoutMs ?? DNS_DEFAULTS.tcpTimeoutMs;
    this.maxUdpMessage = options.maxUdpMessage ?? DNS_DEFAULTS.maxUdpMessage;
    this.cache = new DnsCache(options.clock, options.cacheEntries ?? DNS_DEFAULTS.cacheEntries);
    this.ports = new QueryPorts(
      options.transport,
      options.clock,
      options.random,
      Math.max(1, options.queriesPerPort ?? DNS_DEFAULTS.queriesPerPort),
      Math.max(1, options.concurrentPerPort ?? DNS_DEFAULTS.concurrentPerPort),
      DNS_DEFAULTS.portIdleMs,
      { between: () => countDrop(this.stats.drops, 'between-queries'), unmatched: (data, from, server) => this.dropUnmatched(data, from, server) },
    );
    if (typeof options.servers === 'function') this.serverSource = options.servers;
    else this.setServers(options.servers ?? []);
  }

  private get servers(): DnsServerAddress[] {
    if (!this.serverSource) return this.staticServers;
    const list = this.serverSource().map(parseServer);
    // Keep the preferred server only while the list is unchanged.
    if (list.length !== this.staticServers.length || list.some((s, i) => s.address !== this.staticServers[i]!.address || s.port !== this.staticServers[i]!.port)) {
      this.staticServers = list;
      this.preferred = 0;
    }
    return this.staticServers;
  }

  /** Like `dns.setServers`: replaces the list (and any server function); entries may carry a port ('192.0.2.1:5353'). */
  setServers(servers: readonly (string | Ipv4Address | DnsServerAddress)[]): void {
    this.staticServers = servers.map(parseServer);
    this.serverSource = undefined;
    this.preferred = 0;
  }

  getServers(): string[] {
    return this.servers.map((s) => (s.port === DNS_DEFAULTS.serverPort ? formatIpv4(s.address) : `${formatIpv4(s.address)}:${s.port}`));
  }

  clearCache(): void {
    this.cache.clear();
  }

  get cacheSize(): number {
    return this.cache.size;
  }

  /**
   * Abort every outstanding query; their promises reject with ECANCELLED (like
   * `resolver.cancel()`). Source ports kept for reuse (`queriesPerPort`) are closed too.
   */
  cancel(): void {
    for (const query of [...this.pending]) query.cancel();
    this.ports.closeIdle();
  }

  /** Source ports open and waiting for their next query (`queriesPerPort` > 1). */
  get idlePorts(): number {
    return this.ports.idleCount;
  }

  resolve4(hostname: string): Promise<string[]>;
  resolve4(hostname: string, options: { ttl: true }): Promise<RecordWithTtl[]>;
  resolve4(hostname: string, options?: { ttl?: boolean }): Promise<string[] | RecordWithTtl[]>;
  async resolve4(hostname: string, options?: { ttl?: boolean }): Promise<string[] | RecordWithTtl[]> {
    const result = await this.resolveAddresses(hostname, DnsType.A, 'queryA');
    return options?.ttl ? result.addresses.map((address) => ({ address, ttl: result.ttlS })) : result.addresses;
  }

  resolve6(hostname: string): Promise<string[]>;
  resolve6(hostname: string, options: { ttl: true }): Promise<RecordWithTtl[]>;
  resolve6(hostname: string, options?: { ttl?: boolean }): Promise<string[] | RecordWithTtl[]>;
  async resolve6(hostname: string, options?: { ttl?: boolean }): Promise<string[] | RecordWithTtl[]> {
    const result = await this.resolveAddresses(hostname, DnsType.AAAA, 'queryAaaa');
    return options?.ttl ? result.addresses.map((address) => ({ address, ttl: result.ttlS })) : result.addresses;
  }

  /**
   * Like `dns.promises.lookup`. Literals are returned without a query, "localhost" is loopback
   * (RFC 6761 §6.3). A name with no records of the family rejects with ENOTFOUND, as getaddrinfo does.
   */
  lookup(hostname: string, options: LookupOptions & { all: true }): Promise<LookupAddress[]>;
  lookup(hostname: string, options?: LookupOptions & { all?: false }): Promise<LookupAddress>;
  lookup(hostname: string, options?: LookupOptions): Promise<LookupAddress | LookupAddress[]>;
  async lookup(hostname: string, options: LookupOptions = {}): Promise<LookupAddress | LookupAddress[]> {
    const family = options.family ?? 0;
    const finish = (list: LookupAddress[]): LookupAddress | LookupAddress[] => (options.all ? list : list[0]!);
    const v4 = tryParseIpv4(hostname);
    if (v4 !== undefined && family !== 6) return finish([{ address: formatIpv4(v4), family: 4 }]);
    if (isIPv6(hostname) && family !== 4) return finish([{ address: hostname, family: 6 }]);
    const key = nameKey(hostname);
    if (key === 'localhost' || key.endsWith('.localhost')) {
      return finish(family === 6 ? [{ address: '::1', family: 6 }] : [{ address: '127.0.0.1', family: 4 }]);
    }
    const asLookupError = (error: unknown): never => {
      const code = (error as { code?: DnsErrorCode }).code ?? 'EBADRESP';
      throw dnsError(code === 'ENODATA' ? 'ENOTFOUND' : code, 'getaddrinfo', hostname);
    };
    const query = async (type: number, fam: 4 | 6): Promise<LookupAddress[]> => {
      const result = await this.resolveAddresses(hostname, type, type === DnsType.A ? 'queryA' : 'queryAaaa');
      return result.addresses.map((address) => ({ address, family: fam }));
    };
    try {
      if (family === 4) return finish(await query(DnsType.A, 4));
      if (family === 6) return finish(await query(DnsType.AAAA, 6));
      if (options.all) {
        const [a, aaaa] = await Promise.allSettled([query(DnsType.A, 4), query(DnsType.AAAA, 6)]);
        const list = [...(a.status === 'fulfilled' ? a.value : []), ...(aaaa.status === 'fulfilled' ? aaaa.value : [])];
        if (list.length > 0) return list;
        throw a.status === 'rejected' ? a.reason : (aaaa as PromiseRejectedResult).reason;
      }
      try {
        return finish(await query(DnsType.A, 4));
      } catch (error) {
        if ((error as { code?: string }).code !== 'ENODATA') throw error;
        return finish(await query(DnsType.AAAA, 6));
      }
    } catch (error) {
      return asLookupError(error);
    }
  }

  // -------------------------------------------------------------------------------------------

  private resolveAddresses(hostname: string, type: number, syscall: string): Promise<Resolution> {
    if (typeof hostname !== 'string' || hostname === '.' || hostname === '') {
      return Promise.reject(dnsError('EBADNAME', syscall, String(hostname)));
    }
    const cached = this.cache.get(hostname, type);
    if (cached) {
      this.stats.cacheHits++;
      if (cached.kind === 'positive') return Promise.resolve({ addresses: [...cached.addresses], ttlS: cached.ttlS });
      return Promise.reject(dnsError(cached.kind === 'nxdomain' ? 'ENOTFOUND' : 'ENODATA', syscall, hostname));
    }
    // Concurrent asks for the same name and type share one query.
    const flightKey = `${type} ${nameKey(hostname)}`;
    const existing = this.inFlight.get(flightKey);
    if (existing) {
      this.stats.cacheMisses++;
      return existing;
    }
    // Encoding the query is also the check that the name can be one (RFC 1035 §2.3.4).
    let query: Uint8Array;
    try {
      query = emitDnsQuery(0, hostname, type);
    } catch {
      return Promise.reject(dnsError('EBADNAME', syscall, hostname));
    }
    this.stats.cacheMisses++;
    const promise = this.chase(hostname, type, syscall, query, flightKey);
    this.inFlight.set(flightKey, promise);
    return promise;
  }

  /**
   * Query, following CNAMEs (RFC 1034 §5.3.3 step 3c) across queries when a server stops short.
   * `firstQuery` asks for `hostname` (its id is set per send); the flight entry goes when this ends —
   * never before the caller has set it, as the first await comes before anything can throw.
   */
  private async chase(hostname: string, type: number, syscall: string, firstQuery: Uint8Array, flightKey: string): Promise<Resolution> {
    let current = hostname;
    let query = firstQuery;
    let chainLength = 0;
    let visited: Set<string> | undefined;
    let ttlS = Infinity;
    let cacheable = true;
    try {
      for (;;) {
        const { message, partial } = await this.exchange(current, type, syscall, hostname, query);
        if (partial) cacheable = false;
        if (message.rcode === DnsRcode.NXDOMAIN) {
          const negativeTtl = this.negativeTtl(message);
          if (cacheable && negativeTtl !== undefined) {
            this.cache.putNxdomain(current, negativeTtl);
            if (current !== hostname) this.cache.putNodata(hostname, type, Math.min(negativeTtl, ttlS));
          }
          throw dnsError('ENOTFOUND', syscall, hostname);
        }
        // Walk the answer section from the name asked, through any CNAMEs it holds.
        let target = current;
        const found: DnsRecord[] = [];
        for (;;) {
          // Names usually come back exactly as asked: fold case only when they differ.
          let targetKey: string | undefined;
          let alias: DnsRecord | undefined;
          for (const r of message.answers) {
            if (r.type === type ? r.class !== DNS_CLASS_IN : r.type !== DnsType.CNAME || alias) continue;
            if (r.name !== target && nameKey(r.name) !== (targetKey ??= nameKey(target))) continue;
            if (r.type === type) found.push(r);
            else alias = r;
          }
          if (found.length > 0) break;
          if (!alias || alias.data.kind !== 'name') break;
          chainLength++;
          ttlS = Math.min(ttlS, alias.ttl);
          target = alias.data.name;
          const aliasKey = nameKey(target);
          visited ??= new Set([nameKey(hostname)]);
          if (chainLength > this.maxCnameChain || visited.has(aliasKey)) {
            throw dnsError('EBADRESP', syscall, hostname, chainLength > this.maxCnameChain ? 'CNAME chain too long' : 'CNAME loop');
          }
          visited.add(aliasKey);
        }
        if (found.length > 0) {
          const addresses: string[] = [];
          for (const r of found) {
            ttlS = Math.min(ttlS, r.ttl);
            const text = r.data.kind === 'a' ? formatIpv4(r.data.address) : r.data.kind === 'aaaa' ? formatIpv6(r.data.address) : undefined;
            if (text === undefined) throw dnsError('EBADRESP', syscall, hostname, 'bad address record');
            if (!addresses.includes(text)) addresses.push(text);
          }
          const boundedTtl = Math.min(ttlS, DNS_DEFAULTS.maxPositiveTtlS);
          if (cacheable) this.cache.putPositive(hostname, type, addresses, boundedTtl);
          return { addresses, ttlS: boundedTtl };
        }
        if (partial) throw dnsError('EBADRESP', syscall, hostname, 'truncated reply and no TCP');
        if (target !== current) {
          // The server gave the alias but not its target (e.g. an authoritative server whose CNAME
          // leaves its zone): ask again for the target.
          current = target;
          query = emitDnsQuery(0, target, type);
          continue;
        }
        // NOERROR with nothing for the name: NODATA (RFC 2308 §2.2).
        const negativeTtl = this.negativeTtl(message);
        if (cacheable && negativeTtl !== undefined) this.cache.putNodata(hostname, type, Math.min(negativeTtl, ttlS));
        throw dnsError('ENODATA', syscall, hostname);
      }
    } finally {
      this.inFlight.delete(flightKey);
    }
  }

  /** RFC 2308 §5: negative TTL = min(SOA TTL, SOA MINIMUM); no SOA → not cached. */
  private negativeTtl(message: DnsMessage): number | undefined {
    const soa = message.authorities.find((r) => r.type === DnsType.SOA && r.data.kind === 'soa');
    if (!soa || soa.data.kind !== 'soa') return undefined;
    return Math.min(soa.ttl, soa.data.soa.minimum, DNS_DEFAULTS.maxNegativeTtlS);
  }

  /** One question to the servers in turn, in rounds with a doubling timeout, until one answers usefully. */
  private async exchange(name: string, type: number, syscall: string, hostname: string, query: Uint8Array): Promise<{ message: DnsMessage; partial: boolean }> {
    const servers = this.servers;
    if (servers.length === 0) throw dnsError('ECONNREFUSED', syscall, hostname, 'no DNS servers configured');
    let failure: { code: DnsErrorCode; detail: string } | undefined;
    let sent = 0;
    for (let attempt = 0; attempt < this.attempts; attempt++) {
      const timeoutMs = Math.min(this.initialTimeoutMs * 2 ** attempt, this.maxTimeoutMs);
      for (let k = 0; k < servers.length; k++) {
        const index = (this.preferred + k) % servers.length;
        const server = servers[index]!;
        // Each send gets its own copy: a transport may still hold the one sent before.
        const outcome = await this.queryServer(server, sent++ === 0 ? query : query.slice(), name, type, timeoutMs);
        if (outcome.kind === 'cancelled') throw dnsError('ECANCELLED', syscall, hostname);
        if (outcome.kind === 'timeout') {
          this.stats.timeouts++;
          continue;
        }
        if (outcome.kind === 'error') {
          failure = outcome;
          continue;
        }
        const rcodeError = rcodeToError(outcome.message.rcode);
        if (rcodeError) {
          // Another server may do better (RFC 1034 §5.3.3 step 4: try the next server).
          failure = { code: rcodeError, detail: `rcode ${outcome.message.rcode} from ${formatIpv4(server.address)}` };
          continue;
        }
        if (servers === this.servers) this.preferred = index;
        return outcome;
      }
    }
    throw dnsError(failure?.code ?? 'ETIMEOUT', syscall, hostname, failure?.detail);
  }

  /** Reply validation shared by UDP and TCP: same id, a response, the same single question. */
  private validate(message: DnsMessage, id: number, name: string, type: number): string | undefined {
    if (!message.response) return 'not-response';
    if (message.id !== id) return 'wrong-id';
    const q = message.questions;
    if (q.length !== 1 || q[0]!.type !== type || q[0]!.class !== DNS_CLASS_IN || !sameName(q[0]!.name, name)) return 'wrong-question';
    return undefined;
  }

  /** Sends `query` (asking for `name`/`type`) with a fresh random id and waits for its outcome. */
  private queryServer(server: DnsServerAddress, query: Uint8Array, name: string, type: number, timeoutMs: number): Promise<Outcome> {
    const random = this.options.random;
    let id = random.u32() & 0xffff;
    let port: QueryPort;
    try {
      port = this.ports.acquire(server);
    } catch (error) {
      const code = (error as SocketError).code;
      return Promise.resolve({ kind: 'error', code: 'ECONNREFUSED', detail: `cannot open a socket: ${code ?? String(error)}` });
    }
    // On a shared port the id tells its queries apart: draw again until no other one has it.
    while (port.queries.has(id)) id = random.u32() & 0xffff;
    query[0] = id >>> 8;
    query[1] = id & 0xff;
    return new Promise<Outcome>((resolve) => {
      const pending = new UdpQuery(this, server, port, query, id, name, type, resolve);
      this.pending.add(pending);
      this.ports.attach(port, pending, timeoutMs);
      this.stats.queriesSent++;
      port.socket.send(query, server.port, server.address);
    });
  }

  /** A UDP query is over: its port goes back to the pool (or is closed), it is no longer cancellable. */
  finishUdp(query: UdpQuery, port: QueryPort, healthy: boolean): void {
    this.pending.delete(query);
    this.ports.release(port, query, healthy);
  }

  /** A datagram at a shared port with none of its queries' ids: counted as what it is. */
  private dropUnmatched(data: Uint8Array, from: DatagramPeer, server: DatagramPeer): void {
    if (from.address !== server.address || from.port !== server.port) return countDrop(this.stats.drops, 'wrong-source');
    const parsed = parseDnsMessage(data, this.maxUdpMessage);
    countDrop(this.stats.drops, !parsed.ok ? parsed.reason : parsed.message.response ? 'wrong-id' : 'not-response');
  }

  /** A UDP reply came: counted drop (undefined) or the parsed, validated message. */
  acceptUdp(data: Uint8Array, from: DatagramPeer, server: DnsServerAddress, id: number, name: string, type: number): DnsMessage | string | undefined {
    if (from.address !== server.address || from.port !== server.port) return void countDrop(this.stats.drops, 'wrong-source');
    const parsed = parseDnsMessage(data, this.maxUdpMessage);
    if (!parsed.ok) {
      countDrop(this.stats.drops, parsed.reason);
      return `malformed reply: ${parsed.reason}`;
    }
    const problem = this.validate(parsed.message, id, name, type);
    if (problem) return void countDrop(this.stats.drops, problem);
    this.stats.repliesAccepted++;
    return parsed.message;
  }

  /** RFC 7766 §5 / RFC 2181 §9: a truncated reply is retried over TCP when we can. */
  retryOverTcp(server: DnsServerAddress, query: Uint8Array, id: number, name: string, type: number): Promise<Outcome> | undefined {
    const tcpQuery = this.options.tcpQuery;
    if (!tcpQuery) return undefined;
    this.stats.tcpRetries++;
    return this.queryTcp(tcpQuery, server, query, id, name, type);
  }

  private async queryTcp(tcpQuery: TcpQuery, server: DnsServerAddress, query: Uint8Array, id: number, name: string, type: number): Promise<Outcome> {
    let timer: { cancel(): void } | undefined;
    const timeout = new Promise<Outcome>((resolve) => {
      timer = this.options.clock.schedule(this.tcpTimeoutMs, () => resolve({ kind: 'timeout' }));
    });
    let cancelled!: () => void;
    const cancel = new Promise<Outcome>((resolve) => {
      cancelled = () => resolve({ kind: 'cancelled' });
    });
    const pending = { cancel: () => cancelled() };
    this.pending.add(pending);
    const exchange = (async (): Promise<Outcome> => {
      let reply: Uint8Array;
      try {
        reply = await tcpQuery(server, query);
      } catch (error) {
        const code = (error as SocketError).code;
        return { kind: 'error', code: code === 'ECONNREFUSED' ? 'ECONNREFUSED' : 'EBADRESP', detail: `TCP: ${code ?? String(error)}` };
      }
      const parsed = parseDnsMessage(reply, MAX_TCP_MESSAGE);
      if (!parsed.ok) {
        countDrop(this.stats.drops, parsed.reason);
        return { kind: 'error', code: 'EBADRESP', detail: `malformed TCP reply: ${parsed.reason}` };
      }
      const problem = this.validate(parsed.message, id, name, type);
      if (problem) {
        countDrop(this.stats.drops, problem);
        return { kind: 'error', code: 'EBADRESP', detail: `TCP reply: ${problem}` };
      }
      return { kind: 'reply', message: parsed.message, partial: parsed.message.truncated };
    })();
    try {
      return await Promise.race([exchange, timeout, cancel]);
    } finally {
      timer?.cancel();
      this.pending.delete(pending);
    }
  }
}

/**
 * One UDP query waiting on its port: a class rather than closures, since a busy resolver makes
 * one per lookup.
 */
class UdpQuery implements PortListener {
  deadline = 0;
  private done = false;
  private sawMalformed: string | undefined;

  constructor(
    private readonly resolver: DnsResolver,
    private readonly server: DnsServerAddress,
    private readonly port: QueryPort,
    private readonly query: Uint8Array,
    readonly id: number,
    private readonly name: string,
    private readonly type: number,
    private readonly resolve: (outcome: Outcome) => void,
  ) {}

  cancel(): void {
    this.settle({ kind: 'cancelled' });
  }

  onTimeout(): void {
    this.settle(this.sawMalformed ? { kind: 'error', code: 'EBADRESP', detail: this.sawMalformed } : { kind: 'timeout' });
  }

  onMessage(data: Uint8Array, from: DatagramPeer): void {
    const accepted = this.resolver.acceptUdp(data, from, this.server, this.id, this.name, this.type);
    if (accepted === undefined) return;
    if (typeof accepted === 'string') {
      this.sawMalformed = accepted;
      return;
    }
    if (!accepted.truncated) return this.settle({ kind: 'reply', message: accepted, partial: false });
    const retry = this.resolver.retryOverTcp(this.server, this.query, this.id, this.name, this.type);
    if (!retry) return this.settle({ kind: 'reply', message: accepted, partial: true });
    if (!this.finish(true)) return;
    void retry.then(this.resolve);
  }

  onError(error: SocketError): void {
    // ICMP port unreachable: nothing listens on that server (RFC 1122 §4.1.3.3).
    if (error.code === 'ECONNREFUSED') this.settle({ kind: 'error', code: 'ECONNREFUSED', detail: `${formatIpv4(this.server.address)} refused` }, false);
  }

  private finish(healthy: boolean): boolean {
    if (this.done) return false;
    this.done = true;
    this.resolver.finishUdp(this, this.port, healthy);
    return true;
  }

  private settle(outcome: Outcome, healthy = true): void {
    if (this.finish(healthy)) this.resolve(outcome);
  }
}

function rcodeToError(rcode: number): DnsErrorCode | undefined {
  switch (rcode) {
    case DnsRcode.NOERROR:
    case DnsRcode.NXDOMAIN:
      return undefined;
    case DnsRcode.FORMERR:
      return 'EFORMERR';
    case DnsRcode.SERVFAIL:
      return 'ESERVFAIL';
    case DnsRcode.NOTIMP:
      return 'ENOTIMP';
    case DnsRcode.REFUSED:
      return 'EREFUSED';
    default:
      return 'EBADRESP';
  }
}

function parseServer(server: string | Ipv4Address | DnsServerAddress): DnsServerAddress {
  if (typeof server === 'number') return { address: server >>> 0, port: DNS_DEFAULTS.serverPort };
  if (typeof server === 'object') return { address: server.address >>> 0, port: server.port };
  const match = /^(\d+\.\d+\.\d+\.\d+)(?::(\d+))?$/.exec(server.trim());
  const address = match ? tryParseIpv4(match[1]!) : undefined;
  const port = match?.[2] === undefined ? DNS_DEFAULTS.serverPort : Number(match[2]);
  if (address === undefined || !(port > 0 && port < 65_536)) {
    throw Object.assign(new TypeError(`Invalid IP address: ${server}`), { code: 'ERR_INVALID_IP_ADDRESS' });
  }
  return { address, port };
}
