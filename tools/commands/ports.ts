import { RealClock } from '../../src/time/real-clock.js';
import type { Values } from '../node.js';
import { UsageError } from '../options.js';
import { boardSuggestion, guessBoard, listSerialPorts, usbLabel, type ListedPort } from '../serial-ports.js';

/** One serial port as `spinet ports` reports it. */
export interface PortReport {
  readonly path: string;
  readonly vendorId?: string;
  readonly productId?: string;
  readonly manufacturer?: string;
  /** The bridge sketch's HELLO, when it answered: its protocol version, board name, pins. */
  readonly bridge?: { readonly version: number; readonly board: string; readonly pins: number };
  /** Why it is not a bridge (no answer, cannot open). */
  readonly note?: string;
}

/**
 * `spinet ports [PATH…]`: the serial ports serialport's own `SerialPort.list()` finds (or the paths
 * given), with USB vendor/product, each opened to see whether the bridge sketch answers and which
 * version. Opening a port resets an Arduino (DTR), as any serial monitor's open does.
 */
export async function ports(values: Values, positionals: string[]): Promise<number> {
  const reports = await findPorts(positionals, Number(values.timeout ?? 4) * 1000);
  if (values.json === true) {
    console.log(JSON.stringify(reports));
  } else if (!reports.length) {
    console.error('no serial ports found: is the board plugged in (and its USB cable one that carries data)?');
  } else {
    for (const r of reports) console.log(describePort(r));
  }
  return reports.some((r) => r.bridge) ? 0 : 1;
}

/** One line of `spinet ports`: path, USB IDs, and the bridge's HELLO — or why not, and how to flash it. */
export function describePort(r: PortReport): string {
  const usb = usbLabel(r);
  if (r.bridge) return [r.path, usb, `spinet bridge (protocol ${r.bridge.version}, ${r.bridge.board}, ${r.bridge.pins} pins)`].filter(Boolean).join('  ');
  const guess = guessBoard(r);
  const flash = guess ? `looks like ${boardSuggestion(guess, 'spinet flash ', ` --port ${r.path}`)}` : undefined;
  return [r.path, usb, r.note, flash].filter(Boolean).join('  ');
}

/** Every port (or `paths`), probed for the bridge sketch within `timeoutMs` each. */
export async function findPorts(paths: readonly string[], timeoutMs: number): Promise<PortReport[]> {
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new UsageError('--timeout must be a number of seconds > 0');
  const listed: ListedPort[] = paths.length ? paths.map((path) => ({ path })) : await listSerialPorts();
  const reports: PortReport[] = [];
  for (const port of listed) reports.push({ ...port, ...(await probe(port.path, timeoutMs)) });
  return reports;
}

/** Open `path` and wait for the bridge's HELLO. */
async function probe(path: string, timeoutMs: number): Promise<Pick<PortReport, 'bridge' | 'note'>> {
  const { openBridgeHal } = await import('../../hal/bridge/bridge-hal.js');
  const { explainOpenError } = await import('../boards.js');
  try {
    const hal = await openBridgeHal({ path, baudRate: 1_000_000, clock: new RealClock(), idleFill: 'auto', openTimeoutMs: timeoutMs, reconnectMs: 60_000 });
    const hello = hal.hello;
    await hal.close();
    return hello ? { bridge: { version: hello.version, board: hello.name, pins: hello.pinCount } } : { note: 'opened, but no HELLO' };
  } catch (error) {
    const e = explainOpenError(error, path, 1_000_000) as Error & { code?: string };
    if (e.code === 'ETIMEDOUT') return { note: 'no answer from a bridge sketch (another sketch, or not flashed: spinet flash)' };
    return { note: e.message };
  }
}

/** `--port auto`: the one port where the bridge sketch answers. */
export async function autoPort(): Promise<string> {
  const reports = await findPorts([], 4000);
  const bridges = reports.filter((r) => r.bridge);
  if (bridges.length === 1) return bridges[0]!.path;
  if (!bridges.length) {
    const seen = reports.map((r) => r.path).join(', ');
    throw Object.assign(new Error(`--port auto: no board answers as a spinet bridge${seen ? ` (tried ${seen})` : ' (no serial ports found)'}: plug it in, or flash it (spinet flash --port PATH)`), { code: 'ENOENT' });
  }
  throw new UsageError(`--port auto: ${bridges.length} boards answer (${bridges.map((b) => b.path).join(', ')}): give one with --port PATH`);
}
