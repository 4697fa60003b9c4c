/**
 * An FTDI USB-serial chip (FT232R on a Nano or a Duemilanove) holds what the board sends until a
 * 64-byte packet (62 data bytes) is full or its latency timer runs out: 16 ms by default (FTDI
 * application note AN232B-04, "Data Throughput, Latency and Handshaking"; settable from 1 to
 * 255 ms). Every reply shorter than a packet, and every credit report the board sends under a
 * stream from the host, waits that long. Linux's ftdi_sio driver (drivers/usb/serial/ftdi_sio.c,
 * its `latency_timer` device attribute) exposes the timer as
 * `/sys/bus/usb-serial/devices/ttyUSBn/latency_timer` (read-write, milliseconds); many serial tools
 * set it to 1. The host does so when it opens an FTDI port, best effort: the file belongs to root
 * unless a udev rule says otherwise, and the result says what to do then. CH340 and the 16U2 have no such timer (the file is absent).
 */
import { constants } from 'node:fs';
import { access, readFile, realpath, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';

/** FTDI's USB vendor ID (USB-IF), as sysfs writes it in the device's `idVendor`. */
export const FTDI_VENDOR_ID = '0403';

export type FtdiLatencyOutcome =
  /** The timer was above the target and is now at it. */
  | 'set'
  /** It already was at or below the target. */
  | 'already'
  /** Not an FTDI port, or no such sysfs file (another OS, another driver): nothing to do. */
  | 'not-ftdi'
  /** An FTDI port whose timer could not be changed (permission): `message` says how to. */
  | 'denied';

export interface FtdiLatency {
  readonly outcome: FtdiLatencyOutcome;
  /** The tty's name (ttyUSB0) when it is an FTDI port. */
  readonly device?: string;
  /** The timer before, and after, in ms (an FTDI port). */
  readonly fromMs?: number;
  readonly toMs?: number;
  /** For a person, when there is something to say. */
  readonly message?: string;
}

export interface FtdiLatencyOptions {
  /** Where sysfs is mounted (a fake tree in tests). Default /sys. */
  readonly sysfsRoot?: string;
  /** The timer to set, ms (1..255). Default 1. */
  readonly targetMs?: number;
}

/**
 * Set the latency timer of the FTDI chip behind `portPath` (e.g. /dev/ttyUSB0, or a udev symlink to
 * it) to `targetMs` when it is higher. Never throws: a port that is not an FTDI one, or a system
 * without the file, is 'not-ftdi'.
 */
export async function tuneFtdiLatency(portPath: string, options: FtdiLatencyOptions = {}): Promise<FtdiLatency> {
  const sysfs = options.sysfsRoot ?? '/sys';
  const targetMs = options.targetMs ?? 1;
  if (!Number.isInteger(targetMs) || targetMs < 1 || targetMs > 255) throw new RangeError(`FTDI latency timer of ${targetMs} ms (1 to 255)`);
  const device = basename(await realpath(portPath).catch(() => portPath));
  const ttyDir = join(sysfs, 'bus', 'usb-serial', 'devices', device);
  const file = join(ttyDir, 'latency_timer');
  let fromMs: number;
  try {
    fromMs = Number.parseInt(await readFile(file, 'utf8'), 10);
  } catch {
    return { outcome: 'not-ftdi' };
  }
  // The tty's directory sits in the USB interface's (1-1:1.0), which sits in the device's (1-1).
  const vendor = await realpath(ttyDir)
    .then((dir) => readFile(resolve(dir, '..', '..', 'idVendor'), 'utf8'))
    .then((text) => text.trim().toLowerCase())
    .catch(() => undefined);
  if (vendor !== undefined && vendor !== FTDI_VENDOR_ID) return { outcome: 'not-ftdi' };
  if (!Number.isFinite(fromMs)) return { outcome: 'not-ftdi' };
  if (fromMs <= targetMs) return { outcome: 'already', device, fromMs, toMs: fromMs };
  try {
    await access(file, constants.W_OK);
    await writeFile(file, `${targetMs}\n`);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    return {
      outcome: 'denied',
      device,
      fromMs,
      toMs: fromMs,
      message:
        `${device}: the FTDI chip's latency timer stays at ${fromMs} ms (${code} on ${file}): replies and credit ` +
        `reports wait up to ${fromMs} ms in the chip. To set it: echo ${targetMs} | sudo tee ${file} ` +
        `(or a udev rule, see README "FTDI latency timer")`,
    };
  }
  return { outcome: 'set', device, fromMs, toMs: targetMs, message: `${device}: FTDI latency timer ${fromMs} → ${targetMs} ms` };
}
