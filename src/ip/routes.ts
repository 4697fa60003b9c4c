import { formatIpv4, prefixMask, toIpv4Address, type Ipv4Address } from '../wire/address.js';
import type { RouteRow } from '../stats/rows.js';

/**
 * The IPv4 routing table: longest prefix wins, then the lowest metric (RFC 1812 §5.2.4.3, as a
 * host applies it). On-link routes come from interface addresses; a default route is 0.0.0.0/0
 * with a gateway.
 */
export interface Route {
  readonly destination: Ipv4Address;
  readonly prefixLength: number;
  /** Next hop; undefined for an on-link route. */
  readonly gateway: Ipv4Address | undefined;
  readonly interfaceIndex: number;
  readonly metric: number;
  /** 'connected' routes follow interface addresses; 'static' ones are added by the user or DHCP. */
  readonly origin: 'connected' | 'static';
}

export interface RouteInput {
  readonly destination: Ipv4Address | string;
  readonly prefixLength: number;
  readonly gateway?: Ipv4Address | string;
  readonly interfaceIndex: number;
  readonly metric?: number;
}

export class RouteTable {
  private routes: Route[] = [];

  /** `usable(interfaceIndex)`: routes through an interface whose link is down are skipped. */
  constructor(private readonly usable: (interfaceIndex: number) => boolean = () => true) {}

  /** Add (or replace the same destination/prefix/gateway/interface) and return the stored route. */
  add(input: RouteInput, origin: 'connected' | 'static' = 'static'): Route {
    if (!Number.isInteger(input.prefixLength) || input.prefixLength < 0 || input.prefixLength > 32) {
      throw Object.assign(new RangeError(`Invalid prefix length ${input.prefixLength}`), { code: 'ERR_INVALID_ARG_VALUE' });
    }
    const route: Route = {
      destination: (toIpv4Address(input.destination) & prefixMask(input.prefixLength)) >>> 0,
      prefixLength: input.prefixLength,
      gateway: input.gateway === undefined ? undefined : toIpv4Address(input.gateway),
      interfaceIndex: input.interfaceIndex,
      metric: input.metric ?? (origin === 'connected' ? 0 : 100),
      origin,
    };
    this.routes = this.routes.filter((r) => !sameRoute(r, route));
    this.routes.push(route);
    // Keep most specific first, then by metric: lookup returns the first usable match.
    this.routes.sort((a, b) => b.prefixLength - a.prefixLength || a.metric - b.metric);
    return route;
  }

  /** Remove routes matching every given field. Returns how many were removed. */
  remove(match: Partial<RouteInput>): number {
    const before = this.routes.length;
    const destination = match.destination === undefined ? undefined : toIpv4Address(match.destination);
    const gateway = match.gateway === undefined ? undefined : toIpv4Address(match.gateway);
    this.routes = this.routes.filter(
      (r) =>
        !(
          (destination === undefined || r.destination === ((destination & prefixMask(match.prefixLength ?? r.prefixLength)) >>> 0)) &&
          (match.prefixLength === undefined || r.prefixLength === match.prefixLength) &&
          (gateway === undefined || r.gateway === gateway) &&
          (match.interfaceIndex === undefined || r.interfaceIndex === match.interfaceIndex) &&
          (match.metric === undefined || r.metric === match.metric)
        ),
    );
    return before - this.routes.length;
  }

  /** Longest-prefix match; `interfaceIndex` restricts the search to one interface. */
  lookup(destination: Ipv4Address | string, interfaceIndex?: number): Route | undefined {
    const dst = toIpv4Address(destination);
    const routes = this.routes;
    for (let i = 0; i < routes.length; i++) {
      const r = routes[i]!;
      if (((dst & prefixMask(r.prefixLength)) >>> 0) !== r.destination) continue;
      if (interfaceIndex !== undefined && r.interfaceIndex !== interfaceIndex) continue;
      if (!this.usable(r.interfaceIndex)) continue;
      return r;
    }
    return undefined;
  }

  list(): Route[] {
    return [...this.routes];
  }

  rows(): RouteRow[] {
    return this.routes.map((r) => ({
      destination: formatIpv4(r.destination),
      prefixLength: r.prefixLength,
      gateway: r.gateway === undefined ? undefined : formatIpv4(r.gateway),
      interfaceIndex: r.interfaceIndex,
      metric: r.metric,
      origin: r.origin,
    }));
  }
}

function sameRoute(a: Route, b: Route): boolean {
  return a.destination === b.destination && a.prefixLength === b.prefixLength && a.gateway === b.gateway && a.interfaceIndex === b.interfaceIndex;
}
