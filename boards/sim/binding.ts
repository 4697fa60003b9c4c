/**
 * A serialport binding whose ports are simulated links (serial-link.ts), so unchanged host code —
 * `new SerialPortStream({ binding, path, baudRate })` — talks to a simulated board byte for byte as
 * it would to /dev/ttyACM0. Unplugging the link (`SerialLink.vanish`) fails the open port's read
 * with a non-cancel error, which serialport reports as a disconnect ('close' with
 * `disconnected: true`); opening fails with ENOENT until the link reappears.
 */
import type { BindingInterface, BindingPortInterface, OpenOptions, PortInfo, PortStatus, SetOptions, UpdateOptions } from '../../hal/bridge/serialport-types.js';
import type { SerialLink } from './serial-link.js';

interface Registration {
  readonly link: SerialLink;
  readonly resetOnOpen: boolean;
  readonly onBaudRate?: (baud: number) => void;
}

function errorWith(message: string, props: { canceled?: boolean; code?: string }): Error {
  return Object.assign(new Error(message), props);
}

export class SimulatedPortBinding implements BindingPortInterface {
  readonly openOptions: Required<OpenOptions>;
  isOpen = true;
  private queue: Uint8Array[] = [];
  private pendingRead: { resolve: () => void; reject: (error: Error) => void } | undefined;
  private readonly unsubscribe: (() => void)[] = [];
  private baudRate: number;

  constructor(
    private readonly registration: Registration,
    options: OpenOptions,
  ) {
    this.openOptions = {
      dataBits: 8, lock: true, stopBits: 1, parity: 'none', rtscts: false, xon: false, xoff: false, xany: false, hupcl: true,
      ...options,
    } as Required<OpenOptions>;
    this.baudRate = options.baudRate;
    const { link } = registration;
    this.unsubscribe.push(
      link.onHostData((bytes) => {
        this.queue.push(bytes);
        this.wake();
      }),
      link.onPresenceChange((present) => {
        if (!present) this.fail(errorWith('simulated port vanished', { code: 'EIO' }));
      }),
    );
    registration.onBaudRate?.(options.baudRate);
    link.hostOpen(registration.resetOnOpen);
  }

  async read(buffer: Buffer, offset: number, length: number): Promise<{ buffer: Buffer; bytesRead: number }> {
    if (!this.isOpen) throw errorWith('port is not open', { canceled: true });
    while (this.queue.length === 0) {
      await new Promise<void>((resolve, reject) => (this.pendingRead = { resolve, reject }));
    }
    let bytesRead = 0;
    while (bytesRead < length && this.queue.length > 0) {
      const head = this.queue[0]!;
      const n = Math.min(head.length, length - bytesRead);
      buffer.set(head.subarray(0, n), offset + bytesRead);
      bytesRead += n;
      if (n === head.length) this.queue.shift();
      else this.queue[0] = head.subarray(n);
    }
    return { buffer, bytesRead };
  }

  async write(buffer: Buffer): Promise<void> {
    if (!this.isOpen) throw errorWith('port is not open', { canceled: true });
    if (!this.registration.link.present) throw errorWith('simulated port vanished', { code: 'EIO' });
    this.registration.link.hostWrite(new Uint8Array(buffer));
  }

  async update(options: UpdateOptions): Promise<void> {
    this.baudRate = options.baudRate;
    this.registration.onBaudRate?.(options.baudRate);
  }

  async set(_options: SetOptions): Promise<void> {}

  async get(): Promise<PortStatus> {
    return { cts: true, dsr: true, dcd: true };
  }

  async getBaudRate(): Promise<{ baudRate: number }> {
    return { baudRate: this.baudRate };
  }

  async flush(): Promise<void> {
    this.queue = [];
  }

  async drain(): Promise<void> {}

  async close(): Promise<void> {
    if (!this.isOpen) return;
    this.fail(errorWith('port closed', { canceled: true }));
  }

  private fail(error: Error): void {
    this.isOpen = false;
    for (const unsubscribe of this.unsubscribe) unsubscribe();
    const pending = this.pendingRead;
    this.pendingRead = undefined;
    pending?.reject(error);
  }

  private wake(): void {
    const pending = this.pendingRead;
    this.pendingRead = undefined;
    pending?.resolve();
  }
}

/** A binding holding any number of simulated ports by path. */
export class SimulatedBinding implements BindingInterface<SimulatedPortBinding> {
  private readonly ports = new Map<string, Registration>();

  /** Serve `link` at `path`; `resetOnOpen` models DTR auto-reset (Uno, Nano, Mega). */
  register(path: string, link: SerialLink, options: { resetOnOpen?: boolean; onBaudRate?: (baud: number) => void } = {}): void {
    this.ports.set(path, { link, resetOnOpen: options.resetOnOpen ?? true, onBaudRate: options.onBaudRate });
  }

  unregister(path: string): void {
    this.ports.delete(path);
  }

  async list(): Promise<PortInfo[]> {
    return [...this.ports.entries()]
      .filter(([, registration]) => registration.link.present)
      .map(([path]) => ({ path, manufacturer: 'spinet', serialNumber: undefined, pnpId: undefined, locationId: undefined, productId: undefined, vendorId: undefined }));
  }

  async open(options: OpenOptions): Promise<SimulatedPortBinding> {
    const registration = this.ports.get(options.path);
    if (!registration || !registration.link.present) throw errorWith(`Error: No such file or directory, cannot open ${options.path}`, { code: 'ENOENT' });
    return new SimulatedPortBinding(registration, options);
  }
}
