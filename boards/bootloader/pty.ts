/**
 * Put a simulated board behind a pseudo-terminal, so unchanged host tools (avrdude, screen, the
 * spinet CLI over real serialport) can open it like /dev/ttyACM0.
 *
 *   avrdude ─ /dev/pts/N (link: PATH) ─ socat ─ TCP 127.0.0.1 ─ this process ─ board
 *
 * A pty carries no DTR, so "the host opened the port" is detected instead: socat's `wait-slave`
 * holds off connecting until a process opens the slave side, and exits when it closes it (read →
 * EIO). Each TCP connection is therefore one open of the port, i.e. one auto-reset. socat is
 * restarted after every close so the path is there for the next open.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/** The serial side of a board: `AutoResetBoard` satisfies it. */
export interface SerialTarget {
  /** The host opened the port. */
  open(): void;
  /** Host → board. */
  write(bytes: Uint8Array): void;
  /** Board → host; returns an unsubscribe function. */
  onData(listener: (bytes: Uint8Array) => void): () => void;
}

export interface PtyOptions {
  /** Where the pty's symlink goes (like /dev/ttyACM0). */
  readonly path: string;
  /** socat binary (default: `socat` on PATH). */
  readonly socat?: string;
}

const LINK_POLL_MS = 10;
const LINK_WAIT_MS = 5000;

export class PtyBridge {
  private server: Server | undefined;
  private socat: ChildProcess | undefined;
  private socket: Socket | undefined;
  private closed = false;
  private failure: Error | undefined;
  private readonly unsubscribe: () => void;
  /** Number of times a host opened the port. */
  opens = 0;

  private constructor(
    private readonly target: SerialTarget,
    private readonly options: PtyOptions,
  ) {
    this.unsubscribe = target.onData((bytes) => this.socket?.write(bytes));
  }

  /** Start serving `target` at `options.path`; resolves once the path can be opened. */
  static async start(target: SerialTarget, options: PtyOptions): Promise<PtyBridge> {
    const bridge = new PtyBridge(target, options);
    await bridge.listen();
    await bridge.ready();
    return bridge;
  }

  get path(): string {
    return this.options.path;
  }

  /** Resolves when the pty path exists (socat is waiting for the next open). */
  async ready(): Promise<void> {
    const deadline = performance.now() + LINK_WAIT_MS;
    while (!this.socat || !existsSync(this.options.path)) {
      if (this.failure) throw this.failure;
      if (this.closed) throw new Error('pty bridge closed');
      if (performance.now() > deadline) throw new Error(`socat did not create ${this.options.path}`);
      await new Promise((resolve) => setTimeout(resolve, LINK_POLL_MS));
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.unsubscribe();
    this.socket?.destroy();
    const socat = this.socat;
    if (socat && socat.exitCode === null) {
      const exited = new Promise((resolve) => socat.once('exit', resolve));
      socat.kill('SIGTERM');
      await exited;
    }
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private async listen(): Promise<void> {
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    this.spawnSocat();
  }

  private spawnSocat(): void {
    if (this.closed) return;
    const port = (this.server!.address() as AddressInfo).port;
    const socat = spawn(
      this.options.socat ?? 'socat',
      [`PTY,link=${this.options.path},rawer,echo=0,wait-slave`, `TCP:127.0.0.1:${port},nodelay`],
      { stdio: 'ignore' },
    );
    this.socat = socat;
    const opensBefore = this.opens;
    socat.once('error', (error: Error & { code?: string }) => {
      this.failure =
        error.code === 'ENOENT'
          ? Object.assign(new Error('socat not found: install it (sudo apt-get install socat), it makes the pseudo-terminal'), { code: 'ENOENT', cause: error })
          : error;
    });
    socat.once('exit', (code) => {
      if (this.socat === socat) this.socat = undefined;
      // socat that fails before any host opened the pty would fail again: stop instead of spinning.
      if (code !== 0 && this.opens === opensBefore && !this.closed) {
        this.failure = new Error(`socat exited with code ${code} before the pty was opened`);
        return;
      }
      this.spawnSocat();
    });
  }

  private accept(socket: Socket): void {
    this.socket?.destroy();
    this.socket = socket;
    socket.setNoDelay(true);
    this.opens++;
    this.target.open();
    socket.on('data', (data: Buffer) => this.target.write(data));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      if (this.socket === socket) this.socket = undefined;
    });
  }
}
