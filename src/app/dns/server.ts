import { parseIpv4, type Ipv4Address } from '../../wire/address.js';
import type { DatagramFactory, DatagramPeer, DatagramSocket } from '../transport.js';
import { DNS_DEFAULTS } from './options.js';
import { countDrop } from '../../stats/counters.js';
import { DnsStreamDeframer, frameDnsMessage } from './tcp-framing.js';
import {
  DNS_CLASS_IN,
  DnsOpcode,
  DnsRcode,
  DnsType,
  emitDnsMessage,
  MAX_TCP_MESSAGE,
  MAX_UDP_MESSAGE,
  nameKey,
  nameToLabels,
  parseDnsMessage,
  peekDnsHeader,
  type DnsQuestion,
  type DnsRecord,
  type SoaData,
} from './wire.js';

/**
 * A small authoritative DNS server for one zone (lab equipment): A, AAAA and CNAME records,
 * NXDOMAIN/NODATA with the zone's SOA in the authority section so resolvers can cache the
 * negative answer (RFC 2308 §3), REFUSED for names outside the zone. It answers anyone, never
 * recurses, and drops responses and unparseable datagrams (counting why).
 */

export type DnsZoneRecord =
  | { readonly name: string; readonly type: 'A'; readonly address: string | Ipv4Address; readonly ttl?: number }
  | { readonly name: string; readonly type: 'AAAA'; readonly address: Uint8Array; readonly ttl?: number }
  | { readonly name: string; readonly type: 'CNAME'; readonly target: string; readonly ttl?: number };

export interface DnsServerOptions {
  readonly transport: DatagramFactory;
  /** The zone apex, e.g. 'lab.test'. Names are relative to nothing: give them fully ('host.lab.test'). */
  readonly zone: string;
  readonly records?: readonly DnsZoneRecord[];
  readonly port?: number;
  readonly address?: Ipv4Address;
  /** SOA fields; `minimum` is the negative-caching TTL (RFC 2308 §4). */
  readonly soa?: Partial<SoaData> & { readonly ttl?: number };
  readonly defaultTtl?: number;
}

/** What `serveStream` needs of a connection: a net.Socket, spinet's or Node's. */
export interface DnsStreamPeer {
  write(data: Uint8Array): unknown;
  end(): unknown;
  destroy(): unknown;
  setTimeout?(ms: number, callback: () => void): unknown;
  /** Bytes written and not yet taken by the peer (net.Socket's). */
  readonly writableLength?: number;
  on(event: 'data', listener: (chunk: Uint8Array) => void): unknown;
  on(event: 'end' | 'close', listener: () => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
}

export interface DnsServerStats {
  queries: number;
  answered: number;
  nxdomain: number;
  refused: number;
  /** Datagrams not answered, by reason: 'response', parse reasons, 'header-too-short'. */
  drops: Record<string, number>;
}

export class DnsAuthoritativeServer {
  readonly stats: DnsServerStats = { queries: 0, answered: 0, nxdomain: 0, refused: 0, drops: {} };
  private readonly records = new Map<string, DnsRecord[]>();
  private readonly zoneKey: string;
  private readonly soaRecord: DnsRecord;
  private readonly defaultTtl: number;
  private socket: DatagramSocket | undefined;

  constructor(private readonly options: DnsServerOptions) {
    if (!nameToLabels(options.zone)) throw Object.assign(new TypeError(`Invalid zone: ${options.zone}`), { code: 'EBADNAME' });
    this.zoneKey = nameKey(options.zone);
    this.defaultTtl = options.defaultTtl ?? DNS_DEFAULTS.serverDefaultTtlS;
    const soa = options.soa ?? {};
    this.soaRecord = {
      name: options.zone,
      type: DnsType.SOA,
      class: DNS_CLASS_IN,
      ttl: soa.ttl ?? this.defaultTtl,
      data: {
        kind: 'soa',
        soa: {
          mname: soa.mname ?? `ns.${this.zoneKey}`,
          rname: soa.rname ?? `hostmaster.${this.zoneKey}`,
          serial: soa.serial ?? 1,
          refresh: soa.refresh ?? 3600,
          retry: soa.retry ?? 600,
          expire: soa.expire ?? 86_400,
          minimum: soa.minimum ?? this.defaultTtl,
        },
      },
    };
    for (const record of options.records ?? []) this.addRecord(record);
  }

  /** Start answering on the configured port (53 by default). */
  start(): void {
    if (this.socket) return;
    this.socket = this.options.transport.open({ port: this.options.port ?? DNS_DEFAULTS.serverPort, address: this.options.address });
    this.socket.onMessage((data, from) => this.receive(data, from));
    this.socket.onError(() => undefined);
  }

  close(): void {
    this.socket?.close();
    this.socket = undefined;
  }

  addRecord(record: DnsZoneRecord): void {
    if (!nameToLabels(record.name)) throw Object.assign(new TypeError(`Invalid name: ${record.name}`), { code: 'EBADNAME' });
    if (!this.inZone(nameKey(record.name))) throw Object.assign(new RangeError(`${record.name} is outside ${this.options.zone}`), { code: 'ERR_OUT_OF_RANGE' });
    const ttl = record.ttl ?? this.defaultTtl;
    let wire: DnsRecord;
    switch (record.type) {
      case 'A':
        wire = { name: record.name, type: DnsType.A, class: DNS_CLASS_IN, ttl, data: { kind: 'a', address: typeof record.address === 'string' ? parseIpv4(record.address) : record.address } };
        break;
      case 'AAAA':
        if (record.address.length !== 16) throw Object.assign(new RangeError('AAAA needs 16 octets'), { code: 'ERR_OUT_OF_RANGE' });
        wire = { name: record.name, type: DnsType.AAAA, class: DNS_CLASS_IN, ttl, data: { kind: 'aaaa', address: Uint8Array.from(record.address) } };
        break;
      case 'CNAME':
        if (!nameToLabels(record.target)) throw Object.assign(new TypeError(`Invalid name: ${record.target}`), { code: 'EBADNAME' });
        wire = { name: record.name, type: DnsType.CNAME, class: DNS_CLASS_IN, ttl, data: { kind: 'name', name: record.target } };
        break;
    }
    const key = nameKey(record.name);
    const list = this.records.get(key) ?? [];
    list.push(wire);
    this.records.set(key, list);
  }

  removeRecords(name: string, type?: 'A' | 'AAAA' | 'CNAME'): void {
    const key = nameKey(name);
    if (!type) {
      this.records.delete(key);
      return;
    }
    const code = DnsType[type];
    const rest = (this.records.get(key) ?? []).filter((r) => r.type !== code);
    if (rest.length > 0) this.records.set(key, rest);
    else this.records.delete(key);
  }

  /**
   * Answer one query message; undefined when it must not be answered (a response, or not even a
   * header). Public so a TCP front end can reuse it with tcp-framing.ts.
   */
  handleQuery(data: Uint8Array, maxResponse = MAX_UDP_MESSAGE): Uint8Array | undefined {
    const header = peekDnsHeader(data);
    if (!header) {
      countDrop(this.stats.drops, 'header-too-short');
      return undefined;
    }
    if (header.response) {
      // Never answer a response: two servers must not be able to ping-pong forever.
      countDrop(this.stats.drops, 'response');
      return undefined;
    }
    this.stats.queries++;
    const parsed = parseDnsMessage(data);
    if (!parsed.ok) {
      countDrop(this.stats.drops, parsed.reason);
      return emitDnsMessage({ id: header.id, response: true, opcode: header.opcode, rcode: DnsRcode.FORMERR });
    }
    const query = parsed.message;
    const base = { id: query.id, response: true, opcode: query.opcode, recursionDesired: query.recursionDesired };
    if (query.opcode !== DnsOpcode.QUERY) return emitDnsMessage({ ...base, rcode: DnsRcode.NOTIMP });
    if (query.questions.length !== 1) return emitDnsMessage({ ...base, rcode: DnsRcode.FORMERR });
    const question = query.questions[0]!;
    const qkey = nameKey(question.name);
    if (!this.inZone(qkey) || (question.class !== DNS_CLASS_IN && question.class !== DnsType.ANY)) {
      this.stats.refused++;
      return emitDnsMessage({ ...base, questions: [question], rcode: DnsRcode.REFUSED });
    }
    const reply = this.answer(question);
    if (reply.rcode === DnsRcode.NXDOMAIN) this.stats.nxdomain++;
    this.stats.answered++;
    const full = emitDnsMessage({ ...base, authoritative: true, questions: [question], ...reply });
    if (full.length <= maxResponse) return full;
    // RFC 2181 §9: too big for UDP → TC with no partial RRsets; the resolver retries over TCP.
    return emitDnsMessage({ ...base, authoritative: true, truncated: true, questions: [question], rcode: reply.rcode });
  }

  private answer(question: DnsQuestion): { rcode: number; answers: DnsRecord[]; authorities: DnsRecord[] } {
    const answers: DnsRecord[] = [];
    let key = nameKey(question.name);
    // RFC 1034 §4.3.2 step 3: follow CNAMEs inside our zone, each name visited once.
    const seen = new Set<string>();
    for (;;) {
      seen.add(key);
      const here = key === this.zoneKey ? [...(this.records.get(key) ?? []), this.soaRecord] : (this.records.get(key) ?? []);
      if (here.length === 0) {
        // The chain's last name does not exist: NXDOMAIN (RFC 2308 §2.1 keeps the CNAMEs).
        return { rcode: DnsRcode.NXDOMAIN, answers, authorities: [this.soaRecord] };
      }
      const alias = here.find((r) => r.type === DnsType.CNAME);
      if (alias && question.type !== DnsType.CNAME && alias.data.kind === 'name') {
        answers.push(alias);
        const next = nameKey(alias.data.name);
        if (!this.inZone(next) || seen.has(next)) return { rcode: DnsRcode.NOERROR, answers, authorities: [] };
        key = next;
        continue;
      }
      const matching = here.filter((r) => question.type === DnsType.ANY || r.type === question.type);
      answers.push(...matching);
      // NODATA: the name exists, the type does not (RFC 2308 §2.2) — SOA for negative caching.
      return { rcode: DnsRcode.NOERROR, answers, authorities: matching.length === 0 ? [this.soaRecord] : [] };
    }
  }

  private inZone(key: string): boolean {
    return key === this.zoneKey || key.endsWith(`.${this.zoneKey}`) || this.zoneKey === '.';
  }

  /**
   * Answer queries arriving over one TCP connection (RFC 7766): length-prefixed messages, several
   * per connection and answered in order, each up to 65,535 octets — where a truncated UDP reply
   * sends the resolver. Give it each socket a `net`-compatible server accepts (spinet's or Node's);
   * the connection is closed when the client ends it, after `idleTimeoutMs` without a query
   * (RFC 7766 §6.2.3), or when the client pipelines queries without reading the answers (more than
   * `serverTcpMaxUnreadBytes` of them waiting).
   */
  serveStream(socket: DnsStreamPeer, idleTimeoutMs = DNS_DEFAULTS.serverTcpIdleTimeoutMs): void {
    const deframer = new DnsStreamDeframer();
    socket.setTimeout?.(idleTimeoutMs, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    socket.on('end', () => socket.end());
    socket.on('data', (chunk) => {
      for (const query of deframer.push(chunk)) {
        const reply = this.handleQuery(query, MAX_TCP_MESSAGE);
        if (reply) socket.write(frameDnsMessage(reply));
        if ((socket.writableLength ?? 0) > DNS_DEFAULTS.serverTcpMaxUnreadBytes) {
          countDrop(this.stats.drops, 'tcp-client-not-reading');
          socket.destroy();
          return;
        }
      }
    });
  }

  private receive(data: Uint8Array, from: DatagramPeer): void {
    const reply = this.handleQuery(data);
    if (reply) this.socket?.send(reply, from.port, from.address);
  }
}
