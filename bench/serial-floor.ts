/**
 * The floor under the host's CPU per serial event: what Node and serialport cost per read and
 * write of a pseudo-terminal, with no spinet code. A peer process (bench/serial-floor-peer.ts,
 * the same socat bridge as `spinet sim --pty`) answers each message after a USB chip's latency;
 * this process writes a message, reads the answer, writes the next — one write and one or more
 * reads per exchange, at the sizes the bridge's traffic has — and counts its own CPU per event.
 *
 * Two ways to hold the port, both with serialport opening it (lock, raw mode, rate):
 * - `serialport`: serialport's stream (the binding's poller, an `fs.read` on the thread pool per
 *   readable event, a Readable stream);
 * - `tty`: a second descriptor read and written as Node's TTY stream (libuv's epoll on the event
 *   loop), as hal/bridge/serial-connection.ts does.
 */
import { closeSync, constants, openSync } from 'node:fs';
import { ReadStream } from 'node:tty';
import { fileURLToPath } from 'node:url';
import { SerialPort } from 'serialport';
import { withPtyChild } from './harness.js';

const PEER = fileURLToPath(new URL('./serial-floor-peer.ts', import.meta.url));

export type FloorPortKind = 'serialport' | 'tty';

/** One exchange's sizes: the host writes `write` bytes, the peer answers with `reply`. */
export interface FloorShape {
  readonly write: number;
  readonly reply: number;
  readonly exchanges: number;
}

export interface FloorFigure {
  readonly kind: FloorPortKind;
  readonly shape: FloorShape;
  readonly cpuMs: number;
  readonly seconds: number;
  readonly reads: number;
  readonly writes: number;
  /** CPU per read or write, µs. */
  readonly usPerEvent: number;
}

interface FloorPort {
  write(bytes: Uint8Array): void;
  onData(listener: (bytes: Buffer) => void): void;
  close(): Promise<void>;
}

function done(run: (callback: (error?: Error | null) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => run((error) => (error ? reject(error) : resolve())));
}

async function openFloorPort(path: string, kind: FloorPortKind): Promise<FloorPort> {
  const fd = kind === 'tty' ? openSync(path, constants.O_RDWR | constants.O_NOCTTY | constants.O_NONBLOCK) : undefined;
  const port = new SerialPort({ path, baudRate: 1_000_000, autoOpen: false });
  await done((cb) => port.open(cb));
  if (fd === undefined) {
    return {
      write: (bytes) => void port.write(bytes),
      onData: (listener) => void port.on('data', listener),
      close: () => done((cb) => port.close(cb)),
    };
  }
  const stream = new ReadStream(fd, { readable: true, writable: true } as ConstructorParameters<typeof ReadStream>[1]);
  const handleFd = (stream as unknown as { _handle?: { fd?: number } })._handle?.fd;
  return {
    write: (bytes) => void stream.write(bytes),
    onData: (listener) => void stream.on('data', listener),
    close: async () => {
      stream.destroy();
      if (handleFd !== fd) closeSync(fd);
      await done((cb) => port.close(cb));
    },
  };
}

/** `exchanges` exchanges of `shape` on `port`; resolves with the reads and writes they took. */
function exchange(port: { write(bytes: Uint8Array): void }, shape: FloorShape, exchanges: number, hear: { listener: (bytes: Buffer) => void }): Promise<{ reads: number; writes: number }> {
  const message = Buffer.alloc(Math.max(4, shape.write), 0x33);
  message.writeUInt16LE(message.length, 0);
  message.writeUInt16LE(shape.reply, 2);
  return new Promise((resolve) => {
    let reads = 0;
    let writes = 0;
    let owed = shape.reply;
    let left = exchanges;
    const send = () => {
      writes++;
      owed = shape.reply;
      port.write(message);
    };
    hear.listener = (bytes) => {
      reads++;
      owed -= bytes.length;
      if (owed > 0) return;
      if (--left === 0) resolve({ reads, writes });
      else send();
    };
    send();
  });
}

const cpuMsNow = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

/** The peer at a fresh pty path, for the duration of `use`. */
export function withFloorPeer<T>(delayMs: number, use: (path: string) => Promise<T>): Promise<T> {
  return withPtyChild('spinet-floor-', 'ready', (path) => ['--import', 'tsx', PEER, path, String(delayMs)], use);
}

/** This process's CPU per port event for each shape, through a port held as `kind` (one open of a fresh peer's pty). */
export async function measureFloor(path: string, kind: FloorPortKind, shapes: readonly FloorShape[]): Promise<FloorFigure[]> {
  const port = await openFloorPort(path, kind);
  const hear = { listener: (_bytes: Buffer) => {} };
  port.onData((bytes) => hear.listener(bytes));
  const figures: FloorFigure[] = [];
  try {
    for (const shape of shapes) {
      await exchange(port, shape, Math.min(200, shape.exchanges), hear);
      const cpu0 = cpuMsNow();
      const t0 = performance.now();
      const { reads, writes } = await exchange(port, shape, shape.exchanges, hear);
      const cpuMs = cpuMsNow() - cpu0;
      const seconds = (performance.now() - t0) / 1000;
      figures.push({ kind, shape, cpuMs, seconds, reads, writes, usPerEvent: (1000 * cpuMs) / (reads + writes) });
    }
  } finally {
    await port.close();
  }
  return figures;
}
