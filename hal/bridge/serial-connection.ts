/**
 * The byte pipe under a bridge session: open a serial port, write bytes, hear bytes, change the
 * rate, close, and learn when the port goes away.
 *
 * serialport's stream reads a terminal through its binding: one `fs.read` on libuv's thread pool
 * per readable event, a promise, an EAGAIN exception per empty read, and a Readable stream's
 * bookkeeping; each write the same on the way out. Per byte moved that was most of the host's CPU
 * on the bridge path. Where the port is a terminal (Linux, macOS: USB CDC-ACM, FTDI, CH340, a
 * pseudo-terminal), the connection opens it a second time and reads and writes that descriptor as
 * a libuv TTY stream on the event loop (node:tty): epoll wakes the loop, one `read()` takes all
 * that is waiting, a write goes straight to the kernel. serialport keeps the descriptor it opened
 * for what it is good at — locking the port, setting raw mode, the rate and DTR — and the two share
 * the terminal's settings, which belong to the device, not to a descriptor.
 *
 * libuv writes a terminal that is not a pseudo-terminal until the kernel took every byte (it
 * retries on EAGAIN): harmless here, because the link never has more than the board's receive
 * window (about a kilobyte) unconsumed, far below what a USB-serial driver buffers.
 *
 * Elsewhere (Windows, a simulated board's binding) the connection is serialport's stream.
 */
import { closeSync, constants, openSync } from 'node:fs';
import { isatty, ReadStream } from 'node:tty';
import { SerialPortStream } from '@serialport/stream';
import { SerialPort } from 'serialport';
import type { BindingInterface } from './serialport-types.js';

export interface SerialConnectionOptions {
  readonly path: string;
  readonly baudRate: number;
  /** serialport binding (a simulated board's); default: the operating system's. */
  readonly binding?: BindingInterface;
}

export interface SerialConnectionEvents {
  data(bytes: Uint8Array): void;
  /** The port went away (unplugged, closed underneath): no more data comes. */
  lost(reason: string): void;
}

export interface SerialConnection {
  /** Which byte pipe this is: 'tty' (the event loop's terminal stream) or 'serialport'. */
  readonly kind: 'tty' | 'serialport';
  readonly isOpen: boolean;
  write(bytes: Uint8Array): void;
  setBaud(baudRate: number): Promise<void>;
  close(): Promise<void>;
}

/** Open `options.path`; `events` hears its bytes and its loss until close(). */
export async function openSerialConnection(options: SerialConnectionOptions, events: SerialConnectionEvents): Promise<SerialConnection> {
  if (options.binding === undefined && process.platform !== 'win32') {
    const fd = openTerminal(options.path);
    if (fd !== undefined) return TtyConnection.open(options, fd, events);
  }
  return StreamConnection.open(options, events);
}

/**
 * A second, non-blocking descriptor on the terminal at `path`, or undefined where it cannot be
 * had (not a terminal, no permission): the caller falls back to serialport's stream, whose open
 * reports the problem its own way. Opened before serialport locks the port (TIOCEXCL refuses
 * later opens to anyone but root).
 */
function openTerminal(path: string): number | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDWR | constants.O_NOCTTY | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  if (isatty(fd)) return fd;
  closeSync(fd);
  return undefined;
}

function promised(run: (done: (error?: Error | null) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => run((error) => (error ? reject(error) : resolve())));
}

class TtyConnection implements SerialConnection {
  readonly kind = 'tty';
  private closed = false;

  private constructor(
    private readonly port: SerialPort,
    private readonly stream: ReadStream,
    private readonly extraFd: number | undefined,
  ) {}

  static async open(options: SerialConnectionOptions, fd: number, events: SerialConnectionEvents): Promise<TtyConnection> {
    const port = new SerialPort({ path: options.path, baudRate: options.baudRate, autoOpen: false });
    try {
      await promised((done) => port.open(done));
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    // serialport's stream never reads (nothing listens for its data): the TTY stream does.
    let stream: ReadStream;
    try {
      stream = new ReadStream(fd, { readable: true, writable: true } as ConstructorParameters<typeof ReadStream>[1]);
    } catch (error) {
      closeSync(fd);
      await promised((done) => port.close(done)).catch(() => {});
      throw error;
    }
    // libuv reopens a pseudo-terminal's slave for its own descriptor (and points `fd` at it):
    // then `fd` is the connection's to close.
    const handleFd = (stream as unknown as { _handle?: { fd?: number } })._handle?.fd;
    const connection = new TtyConnection(port, stream, handleFd !== undefined && handleFd !== fd ? fd : undefined);
    stream.on('data', (chunk: Buffer) => events.data(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length)));
    const lost = (reason: string) => {
      if (connection.closed) return;
      connection.closed = true;
      connection.release();
      events.lost(reason);
    };
    stream.on('error', (error: Error) => lost(`serial port error: ${error.message}`));
    stream.on('end', () => lost('serial port closed'));
    port.on('close', () => lost('serial port closed'));
    return connection;
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  write(bytes: Uint8Array): void {
    if (!this.closed) this.stream.write(bytes);
  }

  setBaud(baudRate: number): Promise<void> {
    return promised((done) => this.port.update({ baudRate }, done));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.release();
  }

  private async release(): Promise<void> {
    this.stream.destroy();
    if (this.extraFd !== undefined) closeSync(this.extraFd);
    if (this.port.isOpen) await promised((done) => this.port.close(done)).catch(() => {});
  }
}

class StreamConnection implements SerialConnection {
  readonly kind = 'serialport';

  private constructor(private readonly port: SerialPortStream) {}

  static async open(options: SerialConnectionOptions, events: SerialConnectionEvents): Promise<StreamConnection> {
    const { path, binding, baudRate } = options;
    const port = binding ? new SerialPortStream({ binding, path, baudRate, autoOpen: false }) : new SerialPort({ path, baudRate, autoOpen: false });
    await promised((done) => port.open(done));
    let gone = false;
    const lost = (reason: string) => {
      if (gone) return;
      gone = true;
      events.lost(reason);
    };
    port.on('data', (data: Buffer) => events.data(new Uint8Array(data.buffer, data.byteOffset, data.length)));
    port.on('close', () => lost('serial port closed'));
    port.on('error', (error: Error) => {
      if (!port.isOpen) lost(`serial port error: ${error.message}`);
    });
    return new StreamConnection(port);
  }

  get isOpen(): boolean {
    return this.port.isOpen;
  }

  write(bytes: Uint8Array): void {
    this.port.write(bytes);
  }

  setBaud(baudRate: number): Promise<void> {
    return promised((done) => this.port.update({ baudRate }, done));
  }

  async close(): Promise<void> {
    if (this.port.isOpen) await promised((done) => this.port.close(() => done()));
  }
}
