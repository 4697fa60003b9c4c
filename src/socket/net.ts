import { Duplex } from 'node:stream';
import { EventEmitter } from 'node:events';
import { Buffer } from 'node:buffer';
import { constants as osConstants } from 'node:os';
import { formatIpv4, tryParseIpv4, type Ipv4Address } from '../wire/address.js';
import { systemError, type SystemError } from '../ip/errno.js';
import type { TcpConnection, TcpErrorCode } from '../tcp/connection.js';
import type { Tcp, TcpListener } from '../tcp/tcp.js';
import { RearmableTimer } from '../time/timer.js';

/**
 * node:net over spinet's TCP. `createNet(tcp)` returns `{ createConnection, connect, createServer,
 * Socket, Server }` bound to one Tcp instance. A Socket is a real stream.Duplex: reads pull from
 * the connection's receive queue (so a paused reader closes the TCP window), writes complete when
 * the send buffer takes the bytes (so write() returning false and 'drain' reflect the peer).
 */

/** Runs a body so that a call from inside it, instead of nesting, makes the outer run go round again. */
class NoReentry {
  private running = false;
  private again = false;

  run(body: () => void): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    try {
      do {
        this.again = false;
        body();
      } while (this.again);
    } finally {
      this.running = false;
    }
  }
}
export type LookupFunction = (
  hostname: string,
  options: { family: 4 },
  callback: (error: Error | null, address: string, family: number) => void,
) => void;

export interface NetOptions {
  /** Resolve host names (dns.lookup-shaped). Without it, only IPv4 literals and 'localhost' work. */
  readonly lookup?: LookupFunction;
}

export interface SocketConstructorOptions {
  readonly allowHalfOpen?: boolean;
}

export interface SocketConnectOptions {
  readonly port: number | string;
  readonly host?: string;
  readonly localAddress?: string;
  readonly localPort?: number;
  readonly lookup?: LookupFunction;
  readonly timeout?: number;
  readonly noDelay?: boolean;
  readonly keepAlive?: boolean;
  readonly keepAliveInitialDelay?: number;
  readonly allowHalfOpen?: boolean;
}

export interface ServerOptions {
  readonly allowHalfOpen?: boolean;
  readonly noDelay?: boolean;
  readonly keepAlive?: boolean;
  readonly keepAliveInitialDelay?: number;
  readonly pauseOnConnect?: boolean;
}

export interface ListenOptions {
  readonly port?: number;
  readonly host?: string;
  readonly backlog?: number;
}

export interface AddressInfo {
  address: string;
  family: 'IPv4';
  port: number;
}

interface NetContext {
  readonly tcp: Tcp;
  readonly lookup: LookupFunction;
}

/** Codes errno.ts does not list; values from the host's errno table (Linux numbers on Linux). */
function netError(code: string, syscall: string, address?: string, port?: number): SystemError {
  const error = systemError(code, syscall, address, port);
  if (error.errno === -1) {
    const n = (osConstants.errno as Record<string, number | undefined>)[code];
    if (n !== undefined) error.errno = -n;
  }
  return error;
}

function defaultLookup(hostname: string, _options: { family: 4 }, callback: (error: Error | null, address: string, family: number) => void): void {
  const literal = hostname === 'localhost' ? '127.0.0.1' : hostname;
  if (tryParseIpv4(literal) !== undefined) {
    queueMicrotask(() => callback(null, literal, 4));
    return;
  }
  queueMicrotask(() => callback(Object.assign(netError('ENOTFOUND', 'getaddrinfo', hostname), { hostname }), '', 4));
}

interface PendingWrite {
  chunk: Uint8Array;
  offset: number;
  callback: (error?: Error | null) => void;
}

/** A TCP connection as a stream.Duplex with node:net's Socket API. */
export class Socket extends Duplex {
  connecting = false;
  bytesRead = 0;
  remoteAddress: string | undefined;
  remotePort: number | undefined;
  remoteFamily: 'IPv4' | undefined;
  localAddress: string | undefined;
  localPort: number | undefined;
  /** The Server that accepted this socket, if any. */
  server: Server | null = null;

  private connection: TcpConnection | undefined;
  private pendingWrite: PendingWrite | undefined;
  /** continueWrite() / pull() are running (see there): a nested call defers to them. */
  private readonly writing = new NoReentry();
  private readonly pulling = new NoReentry();
  private pendingFinal: ((error?: Error | null) => void) | undefined;
  private readWanted = false;
  private endPushed = false;
  private written = 0;
  private idleTimeout = 0;
  private idleTimer: RearmableTimer | undefined;
  private noDelayWanted: boolean | undefined;
  private keepAliveWanted: { enable: boolean; delay: number } | undefined;
  private hadError = false;

  constructor(
    private readonly context: NetContext,
    options: SocketConstructorOptions = {},
  ) {
    super({ allowHalfOpen: options.allowHalfOpen ?? false, emitClose: false, autoDestroy: true, decodeStrings: true });
  }

  // ------------------------------------------------------------------ connecting

  connect(options: SocketConnectOptions, connectListener?: () => void): this;
  connect(port: number | string, host?: string, connectListener?: () => void): this;
  connect(port: number | string, connectListener?: () => void): this;
  connect(...args: unknown[]): this {
    const [options, listener] = normalizeConnectArgs(args);
    if (listener) this.once('connect', listener);
    if (this.connection || this.connecting) throw Object.assign(new Error('Socket is already connected'), { code: 'ERR_SOCKET_CONNECTION_ALREADY_OPEN' });
    const port = Number(options.port);
    if (!Number.isInteger(port) || port <= 0 || port > 65535) {
      throw Object.assign(new RangeError(`Port should be > 0 and < 65536. Received ${String(options.port)}.`), { code: 'ERR_SOCKET_BAD_PORT' });
    }
    const host = options.host ?? 'localhost';
    this.connecting = true;
    if (options.timeout) this.setTimeout(options.timeout);
    if (options.noDelay) this.setNoDelay(true);
    if (options.keepAlive) this.setKeepAlive(true, options.keepAliveInitialDelay);
    const lookup = options.lookup ?? this.context.lookup;
    const literal = tryParseIpv4(host);
    const start = (address: string) => this.startConnect(address, port, options);
    if (literal !== undefined) {
      queueMicrotask(() => start(host));
    } else {
      lookup(host, { family: 4 }, (error, address, family) => {
        this.emit('lookup', error, address, family, host);
        if (this.destroyed) return;
        if (error) {
          this.connecting = false;
          this.destroy(error);
          return;
        }
        start(address);
      });
    }
    return this;
  }

  private startConnect(address: string, port: number, options: SocketConnectOptions): void {
    if (this.destroyed) return;
    const remote = tryParseIpv4(address);
    if (remote === undefined) {
      this.destroy(netError('EINVAL', 'connect', address, port));
      return;
    }
    const localAddress = options.localAddress !== undefined ? tryParseIpv4(options.localAddress) : undefined;
    this.remoteAddress = address;
    this.remotePort = port;
    this.remoteFamily = 'IPv4';
    const result = this.context.tcp.connect({ remoteAddress: remote, remotePort: port, localAddress, localPort: options.localPort });
    if (typeof result === 'string') {
      this.connecting = false;
      this.destroy(netError(result, 'connect', address, port));
      return;
    }
    this.bind(result);
  }

  /** @internal Attach an engine connection (client after connect(), or accepted by a Server). */
  bind(connection: TcpConnection): void {
    this.connection = connection;
    this.localAddress = formatIpv4(connection.localAddress);
    this.localPort = connection.localPort;
    this.remoteAddress = formatIpv4(connection.remoteAddress);
    this.remotePort = connection.remotePort;
    this.remoteFamily = 'IPv4';
    // These run the application's handlers ('data', 'connect', write callbacks…) from inside TCP's
    // receive path and timers: what they throw stops here.
    const guarded = <A extends unknown[]>(handler: (...args: A) => void) => (...args: A) => {
      try {
        handler(...args);
      } catch (error) {
        this.context.tcp.contain('a TCP socket callback', error);
      }
    };
    connection.events = {
      onConnect: guarded(() => this.onConnect()),
      onReadable: guarded(() => this.pull()),
      onWritable: guarded(() => this.continueWrite()),
      onError: guarded((code: TcpErrorCode) => this.onEngineError(code)),
    };
    if (this.noDelayWanted !== undefined) connection.setNoDelay(this.noDelayWanted);
    if (this.keepAliveWanted) connection.setKeepAlive(this.keepAliveWanted.enable, this.keepAliveWanted.delay || undefined);
    // Writes made before the connection existed go into its send buffer now (TCP queues in SYN-SENT).
    this.continueWrite();
    if (this.pendingFinal && !this.connecting) this.runFinal();
    if (connection.state !== 'SYN-SENT') {
      // On a synchronous link the handshake (or the refusal) can finish inside tcp.connect(),
      // before these events were attached: report it now.
      const wasConnecting = this.connecting;
      this.connecting = false;
      if (wasConnecting && connection.error) {
        this.connecting = true;
        this.onEngineError(connection.error);
      } else if (wasConnecting) this.onConnect();
      else this.pull();
    }
  }

  private onConnect(): void {
    this.connecting = false;
    this.touch();
    this.emit('connect');
    this.emit('ready');
    if (this.pendingFinal) this.runFinal();
    this.pull();
  }

  private onEngineError(code: TcpErrorCode): void {
    const wasConnecting = this.connecting;
    this.connecting = false;
    this.hadError = true;
    // Node: connect ECONNREFUSED 192.0.2.1:80 while opening; read ECONNRESET / read ETIMEDOUT after.
    const error = wasConnecting ? netError(code, 'connect', this.remoteAddress, this.remotePort) : netError(code, 'read');
    this.connection = undefined;
    this.destroy(error);
  }

  // ------------------------------------------------------------------ stream plumbing

  override _read(): void {
    this.readWanted = true;
    this.pull();
  }

  /**
   * Move received bytes into the stream while it wants them; leftovers keep the TCP window shut.
   * Not re-entered: reading may open the window, and on a synchronous link the peer's next data
   * (and onReadable) arrives inside c.read() — a nested pull would push it ahead of the bytes the
   * outer one is holding. The outer call goes round again instead (also when the stream asked for
   * more, through _read, from inside push()).
   */
  private pull(): void {
    this.pulling.run(() => this.pullLoop());
  }

  private pullLoop(): void {
    const c = this.connection;
    if (!c || !this.readWanted || this.endPushed) return;
    for (;;) {
      if (c.readableLength > 0) {
        const data = c.read();
        this.bytesRead += data.length;
        this.touch();
        if (!this.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength))) {
          this.readWanted = false;
          return;
        }
        continue;
      }
      if (c.endOfStream) {
        this.endPushed = true;
        this.push(null);
      }
      return;
    }
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.pendingWrite = { chunk, offset: 0, callback };
    this.continueWrite();
  }

  /**
   * Feed the pending chunk to the connection. Not re-entered: on a synchronous link c.write() can
   * get the peer's ACK back at once, and onWritable would write the same bytes a second time and
   * complete the chunk twice. A nested call asks the outer one to go round again instead (which
   * also takes the next chunk when the callback hands one over synchronously).
   */
  private continueWrite(): void {
    this.writing.run(() => this.continueWriteOnce());
  }

  private continueWriteOnce(): void {
    const p = this.pendingWrite;
    const c = this.connection;
    if (!p || !c) return;
    while (p.offset < p.chunk.length) {
      const n = c.write(p.chunk.subarray(p.offset));
      if (typeof n === 'string') {
        this.pendingWrite = undefined;
        p.callback(netError(n, 'write'));
        return;
      }
      if (n === 0) return;
      p.offset += n;
      this.written += n;
      this.touch();
    }
    this.pendingWrite = undefined;
    p.callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.pendingFinal = callback;
    if (this.connection && !this.connecting) this.runFinal();
  }

  private runFinal(): void {
    const callback = this.pendingFinal;
    if (!callback) return;
    this.pendingFinal = undefined;
    this.connection?.shutdown();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.idleTimer?.stop();
    const c = this.connection;
    this.connection = undefined;
    this.connecting = false;
    // close(2) semantics: FIN after queued data, or RST if received data is left unread (RFC 1122 §4.2.2.13).
    if (c) {
      if (error && c.state !== 'CLOSED') c.abort();
      else c.close();
    }
    this.pendingWrite = undefined;
    callback(error);
    const hadError = this.hadError || error !== null;
    process.nextTick(() => this.emit('close', hadError));
  }

  // ------------------------------------------------------------------ net.Socket API

  /** Close the connection with a RST (net.Socket#resetAndDestroy). */
  resetAndDestroy(): this {
    this.connection?.abort();
    this.connection = undefined;
    return this.destroy();
  }

  setNoDelay(noDelay = true): this {
    this.noDelayWanted = noDelay;
    this.connection?.setNoDelay(noDelay);
    return this;
  }

  setKeepAlive(enable = false, initialDelay = 0): this {
    this.keepAliveWanted = { enable, delay: initialDelay };
    this.connection?.setKeepAlive(enable, initialDelay > 0 ? initialDelay : undefined);
    return this;
  }

  /** Emit 'timeout' after `ms` of inactivity (0 disables); the socket is not closed. */
  setTimeout(ms: number, callback?: () => void): this {
    this.idleTimeout = ms;
    if (callback) {
      if (ms === 0) this.removeListener('timeout', callback);
      else this.once('timeout', callback);
    }
    if (ms === 0) this.idleTimer?.stop();
    else {
      this.idleTimer ??= new RearmableTimer(this.context.tcp.clock, () => this.emit('timeout'));
      this.idleTimer.arm(ms);
    }
    return this;
  }

  get timeout(): number | undefined {
    return this.idleTimeout || undefined;
  }

  private touch(): void {
    if (this.idleTimeout > 0 && !this.destroyed) this.idleTimer?.arm(this.idleTimeout);
  }

  address(): AddressInfo | Record<string, never> {
    if (this.localAddress === undefined || this.localPort === undefined) return {};
    return { address: this.localAddress, family: 'IPv4', port: this.localPort };
  }

  get bytesWritten(): number {
    return this.written;
  }

  get pending(): boolean {
    return !this.connection || this.connecting;
  }

  get readyState(): 'opening' | 'open' | 'readOnly' | 'writeOnly' | 'closed' {
    if (this.connecting) return 'opening';
    if (this.destroyed || !this.connection) return 'closed';
    if (this.readable && this.writable) return 'open';
    if (this.readable) return 'readOnly';
    if (this.writable) return 'writeOnly';
    return 'closed';
  }

  /** The engine connection's TCP state, for diagnostics. */
  get tcpState(): string {
    return this.connection?.state ?? 'CLOSED';
  }

  ref(): this {
    return this;
  }

  unref(): this {
    return this;
  }
}

/** node:net's Server over spinet's TCP. */
export class Server extends EventEmitter {
  listening = false;
  maxConnections: number | undefined;
  private listener: TcpListener | undefined;
  private readonly sockets = new Set<Socket>();
  private closeCallbacks: ((error?: Error) => void)[] = [];

  constructor(
    private readonly context: NetContext,
    private readonly options: ServerOptions = {},
    connectionListener?: (socket: Socket) => void,
  ) {
    super();
    if (connectionListener) this.on('connection', connectionListener);
  }

  listen(port?: number, host?: string, backlog?: number, callback?: () => void): this;
  listen(port?: number, host?: string, callback?: () => void): this;
  listen(port?: number, callback?: () => void): this;
  listen(options: ListenOptions, callback?: () => void): this;
  listen(...args: unknown[]): this {
    let options: ListenOptions;
    let callback: (() => void) | undefined;
    if (typeof args[args.length - 1] === 'function') callback = args.pop() as () => void;
    if (typeof args[0] === 'object' && args[0] !== null) options = args[0] as ListenOptions;
    else options = { port: args[0] as number | undefined, host: typeof args[1] === 'string' ? args[1] : undefined, backlog: typeof args[1] === 'number' ? args[1] : (args[2] as number | undefined) };
    if (callback) this.once('listening', callback);
    const port = Number(options.port ?? 0);
    const hostText = options.host === undefined || options.host === '::' || options.host === '0.0.0.0' ? '0.0.0.0' : options.host === 'localhost' ? '127.0.0.1' : options.host;
    const address = tryParseIpv4(hostText);
    if (address === undefined) {
      process.nextTick(() => this.emit('error', netError('EADDRNOTAVAIL', 'listen', hostText, port)));
      return this;
    }
    const result = this.context.tcp.listen({ port, address, backlog: options.backlog });
    if (typeof result === 'string') {
      process.nextTick(() => this.emit('error', netError(result, 'listen', hostText, port)));
      return this;
    }
    this.listener = result;
    this.listening = true;
    result.onConnection = () => {
      try {
        this.acceptAll();
      } catch (error) {
        this.context.tcp.contain("a TCP server's connection listener", error);
      }
    };
    process.nextTick(() => this.emit('listening'));
    return this;
  }

  private acceptAll(): void {
    const listener = this.listener;
    if (!listener) return;
    for (;;) {
      const connection = listener.accept();
      if (!connection) return;
      if (this.maxConnections !== undefined && this.sockets.size >= this.maxConnections) {
        connection.abort();
        this.emit('drop', { localAddress: formatIpv4(connection.localAddress), localPort: connection.localPort, remoteAddress: formatIpv4(connection.remoteAddress), remotePort: connection.remotePort, remoteFamily: 'IPv4' });
        continue;
      }
      const socket = new Socket(this.context, { allowHalfOpen: this.options.allowHalfOpen });
      socket.server = this;
      if (this.options.noDelay) socket.setNoDelay(true);
      if (this.options.keepAlive) socket.setKeepAlive(true, this.options.keepAliveInitialDelay);
      socket.bind(connection);
      if (this.options.pauseOnConnect) socket.pause();
      this.sockets.add(socket);
      socket.once('close', () => {
        this.sockets.delete(socket);
        this.maybeClosed();
      });
      this.emit('connection', socket);
    }
  }

  /** Stop accepting; 'close' once every accepted socket has closed. */
  close(callback?: (error?: Error) => void): this {
    if (!this.listener) {
      if (callback) process.nextTick(() => callback(Object.assign(new Error('Server is not running.'), { code: 'ERR_SERVER_NOT_RUNNING' })));
      return this;
    }
    if (callback) this.closeCallbacks.push(callback);
    this.listener.close();
    this.listener = undefined;
    this.listening = false;
    this.maybeClosed();
    return this;
  }

  private maybeClosed(): void {
    if (this.listener || this.sockets.size > 0) return;
    const callbacks = this.closeCallbacks;
    if (callbacks.length === 0 && this.listening) return;
    this.closeCallbacks = [];
    process.nextTick(() => {
      for (const cb of callbacks) cb();
      this.emit('close');
    });
  }

  address(): AddressInfo | null {
    const l = this.listener;
    if (!l) return null;
    return { address: formatIpv4(l.localAddress), family: 'IPv4', port: l.localPort };
  }

  getConnections(callback: (error: Error | null, count: number) => void): this {
    const count = this.sockets.size;
    process.nextTick(() => callback(null, count));
    return this;
  }

  ref(): this {
    return this;
  }

  unref(): this {
    return this;
  }
}

function normalizeConnectArgs(args: unknown[]): [SocketConnectOptions, (() => void) | undefined] {
  let listener: (() => void) | undefined;
  if (typeof args[args.length - 1] === 'function') listener = args.pop() as () => void;
  if (typeof args[0] === 'object' && args[0] !== null) return [args[0] as SocketConnectOptions, listener];
  return [{ port: args[0] as number | string, host: typeof args[1] === 'string' ? args[1] : undefined }, listener];
}

export interface Net {
  /** `new Socket()` bound to this Tcp. */
  readonly Socket: new (options?: SocketConstructorOptions) => Socket;
  readonly Server: new (options?: ServerOptions, connectionListener?: (socket: Socket) => void) => Server;
  createConnection(options: SocketConnectOptions, connectListener?: () => void): Socket;
  createConnection(port: number | string, host?: string, connectListener?: () => void): Socket;
  createConnection(port: number | string, connectListener?: () => void): Socket;
  connect: Net['createConnection'];
  createServer(connectionListener?: (socket: Socket) => void): Server;
  createServer(options: ServerOptions, connectionListener?: (socket: Socket) => void): Server;
  isIP(input: string): 0 | 4;
  isIPv4(input: string): boolean;
  isIPv6(input: string): boolean;
}

/** node:net bound to one Tcp instance (e.g. `createNet(stack.tcp, { lookup: dns.lookup })`). */
export function createNet(tcp: Tcp, options: NetOptions = {}): Net {
  const context: NetContext = { tcp, lookup: options.lookup ?? defaultLookup };
  class BoundSocket extends Socket {
    constructor(socketOptions: SocketConstructorOptions = {}) {
      super(context, socketOptions);
    }
  }
  class BoundServer extends Server {
    constructor(serverOptions: ServerOptions = {}, connectionListener?: (socket: Socket) => void) {
      super(context, serverOptions, connectionListener);
    }
  }
  const createConnection = (...args: unknown[]): Socket => {
    const [connectOptions, listener] = normalizeConnectArgs(args);
    const socket = new BoundSocket({ allowHalfOpen: connectOptions.allowHalfOpen });
    return socket.connect(connectOptions, listener);
  };
  const isIPv4 = (input: string) => tryParseIpv4(input) !== undefined && /^\d+\.\d+\.\d+\.\d+$/.test(input);
  return {
    Socket: BoundSocket,
    Server: BoundServer,
    createConnection: createConnection as Net['createConnection'],
    connect: createConnection as Net['createConnection'],
    createServer: ((a?: unknown, b?: unknown) => {
      if (typeof a === 'function') return new BoundServer({}, a as (socket: Socket) => void);
      return new BoundServer((a as ServerOptions) ?? {}, b as ((socket: Socket) => void) | undefined);
    }) as Net['createServer'],
    isIP: (input: string) => (isIPv4(input) ? 4 : 0),
    isIPv4,
    isIPv6: () => false,
  };
}

export type { Ipv4Address };
