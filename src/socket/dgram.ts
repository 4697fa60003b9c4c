import { EventEmitter } from 'node:events';
import { Buffer } from 'node:buffer';
import { formatIpv4, isMulticastIpv4, tryParseIpv4, type Ipv4Address } from '../wire/address.js';
import { systemError, type SystemError } from '../ip/errno.js';
import type { IcmpErrorInfo, IpReceiveInfo } from '../ip/types.js';
import type { UdpEndpoint, UdpLayer } from '../transport/udp.js';

/**
 * node:dgram-shaped UDP sockets over the stack. Events and callbacks are asynchronous like
 * Node's (queued as microtasks), except 'message', which is emitted as the datagram arrives.
 */

/** Largest UDP payload over IPv4: 65535 − 20 − 8. */
const MAX_UDP_PAYLOAD = 65507;

export interface UdpSocketOptions {
  readonly type?: 'udp4';
  /** SO_REUSEADDR: share the port with other reuseAddr sockets (each gets broadcasts). */
  readonly reuseAddr?: boolean;
  /**
   * Pin the socket to one interface (index or name), like SO_BINDTODEVICE: it sends through that
   * interface whatever the routes say (from 0.0.0.0 if the interface has no address yet, e.g.
   * DHCP) and receives only what arrived on it.
   */
  readonly interface?: number | string;
  /** Resolve host names passed to send/connect (Node's `lookup` option); without it only literals work. */
  readonly lookup?: (hostname: string, callback: (error: Error | null, address: string) => void) => void;
}

/** node:dgram over one UDP layer: `createDgram(stack.udp)`, as `createNet(tcp)` is node:net over TCP. */
export interface Dgram {
  createSocket(options?: UdpSocketOptions): UdpSocket;
}

export function createDgram(udp: UdpLayer): Dgram {
  return { createSocket: (options) => new UdpSocket(udp, options) };
}

export interface RemoteInfo {
  address: string;
  family: 'IPv4';
  port: number;
  size: number;
}

export interface AddressInfo {
  address: string;
  family: 'IPv4';
  port: number;
}

type Message = string | Uint8Array | DataView | readonly (string | Uint8Array)[];
export type SendCallback = (error: SystemError | null, bytes: number) => void;

function nodeError(code: string, message: string): Error & { code: string } {
  return Object.assign(new Error(message), { code });
}

export class UdpSocket extends EventEmitter {
  private readonly endpoint: UdpEndpoint;
  private bound = false;
  private closed = false;
  private broadcast = false;
  private ttl: number | undefined;
  private multicastTtl = 1;
  private readonly groups = new Set<Ipv4Address>();

  constructor(
    private readonly udp: UdpLayer,
    private readonly options: UdpSocketOptions = {},
  ) {
    super();
    let interfaceIndex: number | undefined;
    if (options.interface !== undefined) {
      interfaceIndex = udp.interfaces.interfaceIndex(options.interface);
      if (interfaceIndex === undefined) throw nodeError('ERR_INVALID_ARG_VALUE', `Unknown interface ${String(options.interface)}`);
    }
    this.endpoint = {
      localAddress: 0,
      localPort: 0,
      remoteAddress: 0,
      remotePort: 0,
      interfaceIndex,
      reuseAddress: options.reuseAddr ?? false,
      interfaceName: interfaceIndex === undefined ? undefined : udp.interfaces.interfaceName(interfaceIndex),
      onMessage: (payload, source, sourcePort, info) => this.onMessage(payload, source, sourcePort, info),
      onIcmpError: (error) => this.onIcmpError(error),
    };
  }

  // ------------------------------------------------------------------ bind / connect

  bind(port?: number | { port?: number; address?: string } | (() => void), address?: string | (() => void), callback?: () => void): this {
    if (typeof port === 'function') {
      callback = port;
      port = undefined;
    } else if (typeof port === 'object' && port !== null) {
      if (typeof address === 'function') callback = address;
      address = port.address;
      port = port.port;
    }
    if (typeof address === 'function') {
      callback = address;
      address = undefined;
    }
    if (this.closed) throw nodeError('ERR_SOCKET_DGRAM_NOT_RUNNING', 'Not running');
    if (this.bound) throw nodeError('ERR_SOCKET_ALREADY_BOUND', 'Socket is already bound');
    const portNumber = port ?? 0;
    if (!Number.isInteger(portNumber) || portNumber < 0 || portNumber > 65535) throw nodeError('ERR_SOCKET_BAD_PORT', `Port should be >= 0 and < 65536. Received ${portNumber}.`);
    const local = address === undefined || address === '' ? 0 : tryParseIpv4(address === 'localhost' ? '127.0.0.1' : address);
    if (local === undefined) {
      this.emitLater('error', systemError('ENOTFOUND', 'bind', address));
      return this;
    }
    const error = this.udp.bind(this.endpoint, local, portNumber);
    if (error) {
      this.emitLater('error', systemError(error, 'bind', formatIpv4(local), portNumber));
      return this;
    }
    this.bound = true;
    if (callback) this.once('listening', callback);
    this.emitLater('listening');
    return this;
  }

  /** Implicit bind before the first send/connect (Node binds to 0.0.0.0:ephemeral). */
  private ensureBound(): SystemError | undefined {
    if (this.bound) return undefined;
    const error = this.udp.bind(this.endpoint, 0, 0);
    if (error) return systemError(error, 'bind');
    this.bound = true;
    this.emitLater('listening');
    return undefined;
  }

  connect(port: number, address?: string | (() => void), callback?: () => void): void {
    if (typeof address === 'function') {
      callback = address;
      address = undefined;
    }
    if (this.endpoint.remotePort !== 0) throw nodeError('ERR_SOCKET_DGRAM_IS_CONNECTED', 'Already connected');
    if (!Number.isInteger(port) || port <= 0 || port > 65535) throw nodeError('ERR_SOCKET_BAD_PORT', `Port should be > 0 and < 65536. Received ${port}.`);
    this.resolve(address ?? '127.0.0.1', 'connect', (error, remote) => {
      if (error) {
        this.emit('error', error);
        return;
      }
      const bindError = this.ensureBound();
      if (bindError) {
        this.emit('error', bindError);
        return;
      }
      this.endpoint.remoteAddress = remote;
      this.endpoint.remotePort = port;
      if (callback) this.once('connect', callback);
      this.emit('connect');
    });
  }

  disconnect(): void {
    if (this.endpoint.remotePort === 0) throw nodeError('ERR_SOCKET_DGRAM_NOT_CONNECTED', 'Not connected');
    this.endpoint.remoteAddress = 0;
    this.endpoint.remotePort = 0;
  }

  remoteAddress(): AddressInfo {
    if (this.endpoint.remotePort === 0) throw nodeError('ERR_SOCKET_DGRAM_NOT_CONNECTED', 'Not connected');
    return { address: formatIpv4(this.endpoint.remoteAddress), family: 'IPv4', port: this.endpoint.remotePort };
  }

  address(): AddressInfo {
    if (!this.bound || this.closed) throw nodeError('ERR_SOCKET_DGRAM_NOT_RUNNING', 'Not running');
    return { address: formatIpv4(this.endpoint.localAddress), family: 'IPv4', port: this.endpoint.localPort };
  }

  // ------------------------------------------------------------------ send

  send(msg: Message, port?: number, address?: string | Ipv4Address, callback?: SendCallback): void;
  send(msg: Message, port: number, callback?: SendCallback): void;
  send(msg: Message, callback?: SendCallback): void;
  send(msg: Message, offset: number, length: number, port?: number, address?: string | Ipv4Address, callback?: SendCallback): void;
  send(msg: Message, ...rest: unknown[]): void {
    if (this.closed) throw nodeError('ERR_SOCKET_DGRAM_NOT_RUNNING', 'Not running');
    let callback: SendCallback | undefined;
    let argc = rest.length;
    if (argc > 0 && typeof rest[argc - 1] === 'function') callback = rest[--argc] as SendCallback;
    let data = toBytes(msg);
    let at = 0;
    // send(msg, offset, length, port?, address?)
    if (typeof rest[0] === 'number' && typeof rest[1] === 'number' && (argc >= 3 || this.endpoint.remotePort !== 0) && typeof msg !== 'string') {
      data = data.subarray(rest[0], rest[0] + rest[1]);
      at = 2;
    }
    const port = at < argc ? (rest[at] as number | undefined) : undefined;
    const address = at + 1 < argc ? (rest[at + 1] as string | number | undefined) : undefined;
    const connected = this.endpoint.remotePort !== 0;
    if (connected && port !== undefined) throw nodeError('ERR_SOCKET_DGRAM_IS_CONNECTED', 'Already connected');
    if (!connected && port === undefined) throw nodeError('ERR_SOCKET_DGRAM_NOT_CONNECTED', 'Not connected');
    if (!connected && (!Number.isInteger(port) || port! <= 0 || port! > 65535)) throw nodeError('ERR_SOCKET_BAD_PORT', `Port should be > 0 and < 65536. Received ${String(port)}.`);

    const bindError = this.ensureBound();
    if (bindError) {
      this.complete(callback, bindError, 0);
      return;
    }
    if (connected) {
      this.transmit(data, this.endpoint.remoteAddress, this.endpoint.remotePort, callback);
      return;
    }
    if (typeof address === 'number') {
      this.transmit(data, address >>> 0, port!, callback);
      return;
    }
    const text = address ?? '127.0.0.1';
    // Hot path: most senders repeat one destination; parse its text once.
    if (text === this.lastAddressText) {
      this.transmit(data, this.lastAddress, port!, callback);
      return;
    }
    this.resolve(text, 'send', (error, destination) => {
      if (error) this.complete(callback, error, 0);
      else {
        if (tryParseIpv4(text) !== undefined) {
          this.lastAddressText = text;
          this.lastAddress = destination;
        }
        this.transmit(data, destination, port!, callback);
      }
    });
  }

  private lastAddressText: string | undefined;
  private lastAddress: Ipv4Address = 0;

  /** Node calls the send callback asynchronously; without one, errors become 'error' events. */
  private complete(callback: SendCallback | undefined, error: SystemError | null, bytes: number): void {
    if (callback) queueMicrotask(() => callback(error, bytes));
    else if (error) this.emitLater('error', error);
  }

  private transmit(data: Uint8Array, destination: Ipv4Address, port: number, callback: SendCallback | undefined): void {
    if (data.length > MAX_UDP_PAYLOAD) {
      this.complete(callback, systemError('EMSGSIZE', 'send', formatIpv4(destination), port), 0);
      return;
    }
    // Like Linux: sending to a broadcast address needs SO_BROADCAST (else EACCES).
    if (!this.broadcast && this.udp.interfaces.isBroadcast(destination)) {
      this.complete(callback, systemError('EACCES', 'send', formatIpv4(destination), port), 0);
      return;
    }
    const ttl = isMulticastIpv4(destination) ? this.multicastTtl : this.ttl;
    const result = this.udp.send(this.endpoint, destination, port, data, ttl);
    if (result.ok) {
      if (callback) this.complete(callback, null, data.length);
    } else this.complete(callback, systemError(result.code, 'send', formatIpv4(destination), port), 0);
  }

  private resolve(address: string, syscall: string, callback: (error: SystemError | null, address: Ipv4Address) => void): void {
    const literal = tryParseIpv4(address === 'localhost' ? '127.0.0.1' : address);
    if (literal !== undefined) {
      callback(null, literal);
      return;
    }
    const lookup = this.options.lookup;
    if (!lookup) {
      queueMicrotask(() => callback(systemError('ENOTFOUND', syscall, address), 0));
      return;
    }
    lookup(address, (error, resolved) => {
      const ip = error ? undefined : tryParseIpv4(resolved);
      if (ip === undefined) callback(Object.assign(systemError('ENOTFOUND', syscall, address), error ? { cause: error } : {}), 0);
      else callback(null, ip);
    });
  }

  // ------------------------------------------------------------------ receive

  private lastSource = -1;
  private lastSourceText = '';

  private onMessage(payload: Uint8Array, source: Ipv4Address, sourcePort: number, _info: IpReceiveInfo): void {
    // Zero-copy: received frames are never reused by the Nic, so the Buffer can alias them.
    const msg = Buffer.from(payload.buffer, payload.byteOffset, payload.length);
    if (source !== this.lastSource) {
      this.lastSource = source;
      this.lastSourceText = formatIpv4(source);
    }
    const rinfo: RemoteInfo = { address: this.lastSourceText, family: 'IPv4', port: sourcePort, size: payload.length };
    this.emit('message', msg, rinfo);
  }

  private onIcmpError(error: IcmpErrorInfo): void {
    const code =
      error.kind === 'port-unreachable' || error.kind === 'protocol-unreachable'
        ? 'ECONNREFUSED'
        : error.kind === 'net-unreachable'
          ? 'ENETUNREACH'
          : error.kind === 'fragmentation-needed'
            ? 'EMSGSIZE'
            : 'EHOSTUNREACH';
    // Asynchronous, and dropped when nobody listens: an ICMP error must not throw into the receive path.
    this.emitLater('error', systemError(code, 'recvmsg', formatIpv4(error.originalDestination), this.endpoint.remotePort));
  }

  // ------------------------------------------------------------------ options

  setBroadcast(flag: boolean): void {
    this.broadcast = flag;
  }

  getBroadcast(): boolean {
    return this.broadcast;
  }

  setTTL(ttl: number): number {
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > 255) throw systemError('EINVAL', 'setTTL');
    this.ttl = ttl;
    return ttl;
  }

  setMulticastTTL(ttl: number): number {
    if (!Number.isInteger(ttl) || ttl < 0 || ttl > 255) throw systemError('EINVAL', 'setMulticastTTL');
    this.multicastTtl = ttl;
    return ttl;
  }

  addMembership(multicastAddress: string, _interfaceAddress?: string): void {
    const group = tryParseIpv4(multicastAddress);
    if (group === undefined || !isMulticastIpv4(group)) throw systemError('EINVAL', 'addMembership');
    if (this.groups.has(group)) return;
    this.groups.add(group);
    this.udp.interfaces.joinGroup(group, this.endpoint.interfaceIndex);
  }

  dropMembership(multicastAddress: string, _interfaceAddress?: string): void {
    const group = tryParseIpv4(multicastAddress);
    if (group === undefined || !this.groups.delete(group)) throw systemError('EADDRNOTAVAIL', 'dropMembership');
    this.udp.interfaces.leaveGroup(group, this.endpoint.interfaceIndex);
  }

  ref(): this {
    return this;
  }

  unref(): this {
    return this;
  }

  close(callback?: () => void): this {
    if (this.closed) throw nodeError('ERR_SOCKET_DGRAM_NOT_RUNNING', 'Not running');
    this.closed = true;
    if (this.bound) this.udp.unbind(this.endpoint);
    for (const group of this.groups) this.udp.interfaces.leaveGroup(group, this.endpoint.interfaceIndex);
    this.groups.clear();
    if (callback) this.once('close', callback);
    this.emitLater('close');
    return this;
  }

  private emitLater(event: string, ...args: unknown[]): void {
    queueMicrotask(() => {
      if (event === 'error' && this.listenerCount('error') === 0) return;
      this.emit(event, ...args);
    });
  }
}

function toBytes(msg: Message): Uint8Array {
  if (typeof msg === 'string') return Buffer.from(msg);
  if (msg instanceof Uint8Array) return msg;
  if (msg instanceof DataView) return new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength);
  if (Array.isArray(msg)) return Buffer.concat(msg.map((m) => (typeof m === 'string' ? Buffer.from(m) : m)));
  throw nodeError('ERR_INVALID_ARG_TYPE', 'The "msg" argument must be a string, Buffer, TypedArray, DataView or an array of them');
}
