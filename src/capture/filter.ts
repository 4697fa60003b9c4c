import { tryParseIpv4, formatMac, parseMac } from '../wire/address.js';
import type { FrameSummary } from './decode.js';

/**
 * Capture filters in the words of tcpdump's (pcap-filter(7)), the part people type every day:
 *
 *   host A · src host A · dst host A          an IPv4 address in the IP header or an ARP packet
 *   net A/N · src net A/N · dst net A/N       an address in that network
 *   port N · src port N · dst port N          a TCP or UDP port
 *   ether host MAC · ether src/dst MAC        a MAC address in the Ethernet header
 *   tcp · udp · icmp · arp · ip · broadcast · multicast
 *   tcp port 80, udp dst port 53              a protocol and a port together
 *   not X · X and Y · X or Y · ( X )          also written !, &&, ||
 *
 * `not` binds tightest, then `and`, then `or`. An empty filter takes every frame. The filter
 * runs on the decoded summary (decode.ts), the same one the log lines are printed from.
 */
export type FramePredicate = (frame: FrameSummary) => boolean;

export class FilterError extends Error {
  constructor(
    message: string,
    readonly position: number,
  ) {
    super(message);
    this.name = 'FilterError';
  }
}

interface Token {
  readonly text: string;
  readonly at: number;
}

function tokenize(expression: string): Token[] {
  const tokens: Token[] = [];
  const re = /\s*(\(|\)|&&|\|\||!|[^\s()!&|]+)/y;
  let end = 0;
  let match: RegExpExecArray | null;
  while ((match = re.exec(expression)) !== null) {
    tokens.push({ text: match[1]!, at: match.index + match[0].length - match[1]!.length });
    end = re.lastIndex;
  }
  const rest = expression.slice(end).trim();
  if (rest) throw new FilterError(`cannot read '${rest}'`, expression.length - rest.length);
  return tokens;
}

const PROTOCOLS: Record<string, FramePredicate> = {
  tcp: (f) => f.tcp !== undefined || (f.ipv4?.protocol === 6 && f.ipv4.fragmentOffset > 0),
  udp: (f) => f.udp !== undefined || (f.ipv4?.protocol === 17 && f.ipv4.fragmentOffset > 0),
  icmp: (f) => f.ipv4?.protocol === 1,
  arp: (f) => f.arp !== undefined || f.etherType === 0x0806,
  ip: (f) => f.ipv4 !== undefined,
  broadcast: (f) => f.destination === 'ff:ff:ff:ff:ff:ff',
  multicast: (f) => f.destination !== 'ff:ff:ff:ff:ff:ff' && (Number.parseInt(f.destination.slice(0, 2), 16) & 1) === 1,
};

type Direction = 'src' | 'dst' | 'either';

function ports(f: FrameSummary): [number, number] | undefined {
  const t = f.tcp ?? f.udp;
  return t && [t.sourcePort, t.destinationPort];
}

function addresses(f: FrameSummary): [string, string] | undefined {
  if (f.ipv4) return [f.ipv4.source, f.ipv4.destination];
  if (f.arp) return [f.arp.senderIp, f.arp.targetIp];
  return undefined;
}

function pick<T>(pair: [T, T] | undefined, direction: Direction, test: (value: T) => boolean): boolean {
  if (!pair) return false;
  if (direction === 'src') return test(pair[0]);
  if (direction === 'dst') return test(pair[1]);
  return test(pair[0]) || test(pair[1]);
}

class Parser {
  private index = 0;

  constructor(
    private readonly tokens: Token[],
    private readonly length: number,
  ) {}

  parse(): FramePredicate {
    if (this.tokens.length === 0) return () => true;
    const predicate = this.or();
    const extra = this.peek();
    if (extra) throw new FilterError(`unexpected '${extra.text}' (join terms with and/or)`, extra.at);
    return predicate;
  }

  private peek(): Token | undefined {
    return this.tokens[this.index];
  }

  private next(what: string): Token {
    const token = this.tokens[this.index++];
    if (!token) throw new FilterError(`the filter ends where ${what} should follow`, this.length);
    return token;
  }

  private accept(...words: string[]): boolean {
    const token = this.peek();
    if (token && words.includes(token.text.toLowerCase())) {
      this.index++;
      return true;
    }
    return false;
  }

  private or(): FramePredicate {
    let left = this.and();
    while (this.accept('or', '||')) {
      const a = left;
      const b = this.and();
      left = (f) => a(f) || b(f);
    }
    return left;
  }

  private and(): FramePredicate {
    let left = this.not();
    while (this.accept('and', '&&')) {
      const a = left;
      const b = this.not();
      left = (f) => a(f) && b(f);
    }
    return left;
  }

  private not(): FramePredicate {
    if (this.accept('not', '!')) {
      const inner = this.not();
      return (f) => !inner(f);
    }
    return this.primary();
  }

  private primary(): FramePredicate {
    const token = this.next('a term (host, port, tcp, …)');
    const word = token.text.toLowerCase();
    if (word === '(') {
      const inner = this.or();
      const close = this.next("')'");
      if (close.text !== ')') throw new FilterError(`expected ')' but found '${close.text}'`, close.at);
      return inner;
    }
    const protocol = PROTOCOLS[word];
    if (protocol) {
      // `tcp port 80`, `udp dst port 53`: a protocol qualifying a port term.
      if ((word === 'tcp' || word === 'udp') && ['port', 'src', 'dst'].includes(this.peek()?.text.toLowerCase() ?? '')) {
        const port = this.directed(this.next('port'));
        return (f) => protocol(f) && port(f);
      }
      return protocol;
    }
    if (word === 'ether') return this.ether();
    return this.directed(token);
  }

  /** [src|dst] host A · [src|dst] port N · [src|dst] net A/N */
  private directed(first: Token): FramePredicate {
    let direction: Direction = 'either';
    let token = first;
    const word = token.text.toLowerCase();
    if (word === 'src' || word === 'dst') {
      direction = word;
      token = this.next(`'host', 'port' or 'net' after '${word}'`);
    }
    const kind = token.text.toLowerCase();
    if (kind === 'host') {
      const value = this.next('an IPv4 address');
      if (tryParseIpv4(value.text) === undefined) throw new FilterError(`'${value.text}' is not an IPv4 address (like 192.0.2.1)`, value.at);
      const address = value.text;
      return (f) => pick(addresses(f), direction, (a) => a === address);
    }
    if (kind === 'port') {
      const value = this.next('a port number');
      const port = Number(value.text);
      if (!/^\d+$/.test(value.text) || port > 65535) throw new FilterError(`'${value.text}' is not a port number (0 to 65535)`, value.at);
      return (f) => pick(ports(f), direction, (p) => p === port);
    }
    if (kind === 'net') {
      const value = this.next('a network like 192.0.2.0/24');
      const [base, bits] = value.text.split('/');
      const address = tryParseIpv4(base ?? '');
      const prefix = bits === undefined ? 32 : Number(bits);
      if (address === undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > 32) throw new FilterError(`'${value.text}' is not a network (like 192.0.2.0/24)`, value.at);
      const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
      const network = (address & mask) >>> 0;
      return (f) => pick(addresses(f), direction, (a) => ((tryParseIpv4(a)! & mask) >>> 0) === network);
    }
    throw new FilterError(`unknown term '${token.text}' (expected host, net, port, ether, tcp, udp, icmp, arp, ip, broadcast, multicast, not, '(')`, token.at);
  }

  /** ether host MAC · ether src MAC · ether dst MAC */
  private ether(): FramePredicate {
    const token = this.next("'host', 'src' or 'dst' after 'ether'");
    let direction: Direction;
    const word = token.text.toLowerCase();
    if (word === 'host') direction = 'either';
    else if (word === 'src' || word === 'dst') {
      direction = word;
      this.accept('host');
    } else throw new FilterError(`expected host, src or dst after 'ether', found '${token.text}'`, token.at);
    const value = this.next('a MAC address');
    let mac: string;
    try {
      mac = formatMac(parseMac(value.text));
    } catch {
      throw new FilterError(`'${value.text}' is not a MAC address (like 02:00:00:00:00:01)`, value.at);
    }
    return (f) => pick([f.source, f.destination], direction, (m) => m === mac);
  }
}

/** Compile a filter expression; throws FilterError saying what is wrong and where. */
export function compileFilter(expression: string): FramePredicate {
  return new Parser(tokenize(expression), expression.length).parse();
}
