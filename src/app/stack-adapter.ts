import type { Stack } from '../stack/stack.js';
import { formatIpv4, parseIpv4, type Ipv4Address } from '../wire/address.js';
import { DhcpClient, type DhcpClientOptions } from './dhcp/client.js';
import { DnsResolver, type DnsResolverOptions } from './dns/resolver.js';
import { DNS_DEFAULTS } from './dns/options.js';
import { createTcpQuery } from './dns/tcp-framing.js';
import type { LookupFunction, Net } from '../socket/net.js';
import type { ArpProbe, DatagramFactory, DatagramPeer, DatagramSocket, InterfaceConfigSink, NeighbourWait, SocketError } from './transport.js';
import { createDgram } from '../socket/dgram.js';

/**
 * The application seams (src/app/transport.ts) implemented on a Stack: UDP sockets from
 * `createDgram(stack.udp)`, interface configuration through `iface.addAddress`, `stack.routes`
 * and `stack.dnsServers`, probing through `stack.arp.probe`.
 */

/** Datagram sockets on the stack's UDP layer. `open` throws EADDRINUSE when the port is taken. */
export function stackDatagrams(stack: Stack): DatagramFactory {
  return {
    open(options): DatagramSocket {
      const socket = createDgram(stack.udp).createSocket(options.interfaceIndex !== undefined ? { interface: options.interfaceIndex } : {});
      const errorListeners: ((error: SocketError) => void)[] = [];
      const reportError = (error: Error): void => {
        for (const listener of errorListeners) listener(error as SocketError);
      };
      // Always listening: an unhandled 'error' must never throw out of the receive path.
      socket.on('error', reportError);
      socket.bind(options.port ?? 0, options.address !== undefined ? formatIpv4(options.address) : undefined);
      let localPort: number;
      try {
        // bind reports failure asynchronously (like node:dgram); an unbound socket has no address.
        localPort = socket.address().port;
      } catch {
        socket.close();
        throw Object.assign(new Error(`bind EADDRINUSE ${options.address !== undefined ? formatIpv4(options.address) : '0.0.0.0'}:${options.port ?? 0}`), { code: 'EADDRINUSE' });
      }
      if (options.broadcast) socket.setBroadcast(true);
      const peer = options.peer;
      // A numeric address connects at once (no lookup), before the first send.
      if (peer) {
        try {
          socket.connect(peer.port, formatIpv4(peer.address));
        } catch (error) {
          socket.close();
          throw error;
        }
      }
      let closed = false;
      return {
        localPort,
        send(data: Uint8Array, port: number, address: Ipv4Address): void {
          if (closed) return;
          const sent = (error: Error | null): void => {
            if (error) reportError(error);
          };
          if (!peer) socket.send(data, port, address, sent);
          else if (port === peer.port && address === peer.address) socket.send(data, sent);
          else reportError(Object.assign(new Error(`send to ${formatIpv4(address)}:${port} on a socket connected to ${formatIpv4(peer.address)}:${peer.port}`), { code: 'EISCONN' }));
        },
        onMessage(listener: (data: Uint8Array, from: DatagramPeer) => void): void {
          socket.on('message', (msg: Uint8Array, rinfo: { address: string; port: number }) => {
            listener(new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength), { address: parseIpv4(rinfo.address), port: rinfo.port });
          });
        },
        onError(listener: (error: SocketError) => void): void {
          errorListeners.push(listener);
        },
        close(): void {
          if (closed) return;
          closed = true;
          socket.close();
        },
      };
    },
  };
}

/**
 * Leased configuration applied to one interface: the address (with its connected route, added by
 * the stack), the default route, and `stack.dnsServers`.
 */
export function stackInterfaceConfig(stack: Stack, interfaceIndex: number): InterfaceConfigSink {
  const iface = () => {
    const found = stack.interfaces.find((i) => i.index === interfaceIndex);
    if (!found) throw Object.assign(new RangeError(`No interface ${interfaceIndex}`), { code: 'ERR_INVALID_ARG_VALUE' });
    return found;
  };
  let router: Ipv4Address | undefined;
  return {
    setAddress(address, prefixLength) {
      iface().addAddress(address, prefixLength);
    },
    clearAddress(address) {
      iface().removeAddress(address);
    },
    setRouter(gateway) {
      if (router !== undefined) stack.routes.remove({ destination: 0, prefixLength: 0, gateway: router, interfaceIndex });
      router = gateway;
      if (gateway !== undefined) stack.routes.add({ destination: 0, prefixLength: 0, gateway, interfaceIndex });
    },
    setDnsServers(servers) {
      stack.dnsServers = [...servers];
    },
  };
}

export function stackArpProbe(stack: Stack, interfaceIndex: number): ArpProbe {
  return (address) => stack.arp.probe(interfaceIndex, address);
}

/** Polls the neighbour cache for the next hop towards `address` on the stack's clock. */
export function stackNeighbourWait(stack: Stack, interfaceIndex: number): NeighbourWait {
  const pollMs = 10;
  return (address, timeoutMs) =>
    new Promise((resolve) => {
      const deadline = stack.clock.now() + timeoutMs;
      const check = (): void => {
        const nextHop = stack.routes.lookup(address)?.gateway ?? address;
        if (stack.arp.lookup(interfaceIndex, nextHop) !== undefined) resolve(true);
        else if (stack.clock.now() >= deadline) resolve(false);
        else stack.clock.schedule(pollMs, check);
      };
      check();
    });
}

/**
 * A resolver that follows `stack.dnsServers` (kept current by DHCP). Given the stack's `net`, a
 * truncated reply is asked again over the stack's own TCP (RFC 7766 §5); without it the partial
 * answer is used.
 */
export function createStackResolver(stack: Stack, options: Partial<DnsResolverOptions> & { readonly net?: Net } = {}): DnsResolver {
  const { net, ...rest } = options;
  const tcpTimeoutMs = rest.tcpTimeoutMs ?? DNS_DEFAULTS.tcpTimeoutMs;
  const tcpQuery = net ? createTcpQuery((port, host) => net.createConnection({ port, host }), { clock: stack.clock, timeoutMs: tcpTimeoutMs }) : undefined;
  return new DnsResolver({ transport: stackDatagrams(stack), clock: stack.clock, random: stack.random, servers: () => stack.dnsServers, ...(tcpQuery ? { tcpQuery } : {}), ...rest });
}

/** `net`'s host-name hook answered by a resolver: `createNet(tcp, { lookup: resolverLookup(dns) })`. */
export function resolverLookup(resolver: DnsResolver): LookupFunction {
  return (hostname, _options, callback) => {
    resolver.lookup(hostname, { family: 4 }).then(
      (result) => callback(null, result.address, 4),
      (error: Error) => callback(error, '', 4),
    );
  };
}

/** A DHCP client for one interface of the stack, probing with ARP before it uses a lease. */
export function createStackDhcpClient(stack: Stack, interfaceIndex: number, options: Partial<DhcpClientOptions> = {}): DhcpClient {
  const iface = stack.interfaces.find((i) => i.index === interfaceIndex);
  if (!iface) throw Object.assign(new RangeError(`No interface ${interfaceIndex}`), { code: 'ERR_INVALID_ARG_VALUE' });
  return new DhcpClient({
    transport: stackDatagrams(stack),
    clock: stack.clock,
    random: stack.random,
    mac: iface.mac,
    config: stackInterfaceConfig(stack, interfaceIndex),
    arpProbe: stackArpProbe(stack, interfaceIndex),
    neighbourWait: stackNeighbourWait(stack, interfaceIndex),
    interfaceIndex,
    hostName: stack.hostname,
    ...options,
  });
}
