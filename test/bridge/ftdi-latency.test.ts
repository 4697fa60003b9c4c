/**
 * The FTDI latency timer through a fake sysfs tree laid out as Linux lays it out for ftdi_sio:
 * /sys/bus/usb-serial/devices/ttyUSB0 → the tty's directory inside the USB interface's, inside
 * the device's (with idVendor), and /dev/ttyUSB0 standing for the port (a udev symlink to it too).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tuneFtdiLatency } from '../../hal/bridge/ftdi-latency.js';
import { BridgeSession } from '../../hal/bridge/session.js';

let root: string;

/** A USB serial device `tty` with vendor `vendor`, its latency_timer at `latency` (none: no file). */
function device(tty: string, vendor: string, latency?: number): { port: string; timer: string } {
  const usbDevice = join(root, 'sys', 'devices', 'pci0000:00', 'usb1', `1-${tty.slice(-1)}`);
  const ttyDir = join(usbDevice, `1-${tty.slice(-1)}:1.0`, tty);
  mkdirSync(ttyDir, { recursive: true });
  writeFileSync(join(usbDevice, 'idVendor'), `${vendor}\n`);
  const timer = join(ttyDir, 'latency_timer');
  if (latency !== undefined) writeFileSync(timer, `${latency}\n`);
  mkdirSync(join(root, 'sys', 'bus', 'usb-serial', 'devices'), { recursive: true });
  symlinkSync(ttyDir, join(root, 'sys', 'bus', 'usb-serial', 'devices', tty));
  mkdirSync(join(root, 'dev'), { recursive: true });
  const port = join(root, 'dev', tty);
  writeFileSync(port, '');
  return { port, timer };
}

const sysfsRoot = () => join(root, 'sys');

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'spinet-sysfs-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('FTDI latency timer (Linux sysfs)', () => {
  it('sets an FTDI port at 16 ms to 1 ms, also through a udev symlink to the tty', async () => {
    const { port, timer } = device('ttyUSB0', '0403', 16);
    const byId = join(root, 'dev', 'arduino-nano');
    symlinkSync(port, byId);
    const result = await tuneFtdiLatency(byId, { sysfsRoot: sysfsRoot() });
    expect(result).toMatchObject({ outcome: 'set', device: 'ttyUSB0', fromMs: 16, toMs: 1 });
    expect(result.message).toContain('16 → 1 ms');
    expect(readFileSync(timer, 'utf8').trim()).toBe('1');
  });

  it('leaves a timer already at or below the target alone', async () => {
    const { port, timer } = device('ttyUSB1', '0403', 1);
    expect(await tuneFtdiLatency(port, { sysfsRoot: sysfsRoot() })).toMatchObject({ outcome: 'already', fromMs: 1, toMs: 1 });
    expect(readFileSync(timer, 'utf8').trim()).toBe('1');
    expect(await tuneFtdiLatency(port, { sysfsRoot: sysfsRoot(), targetMs: 4 })).toMatchObject({ outcome: 'already' });
  });

  it('does nothing to a CH340 (no latency timer) or a port of another vendor, or where sysfs has no such tty', async () => {
    const ch340 = device('ttyUSB2', '1a86');
    expect(await tuneFtdiLatency(ch340.port, { sysfsRoot: sysfsRoot() })).toEqual({ outcome: 'not-ftdi' });
    const other = device('ttyUSB3', '10c4', 16);
    expect(await tuneFtdiLatency(other.port, { sysfsRoot: sysfsRoot() })).toEqual({ outcome: 'not-ftdi' });
    expect(readFileSync(other.timer, 'utf8').trim()).toBe('16');
    expect(await tuneFtdiLatency(join(root, 'dev', 'ttyACM0'), { sysfsRoot: sysfsRoot() })).toEqual({ outcome: 'not-ftdi' });
  });

  it('refuses a target outside 1..255 ms', async () => {
    await expect(tuneFtdiLatency('/dev/ttyUSB0', { sysfsRoot: sysfsRoot(), targetMs: 0 })).rejects.toThrow(RangeError);
  });

  it('says how to set it when the file is not writable (a user without the udev rule)', async () => {
    const { port, timer } = device('ttyUSB4', '0403', 16);
    chmodSync(timer, 0o444);
    let result;
    if (process.getuid?.() === 0) {
      // Root writes any file: ask as nobody, in a process of its own.
      for (const dir of [root, join(root, 'sys'), join(root, 'dev')]) chmodSync(dir, 0o755);
      const module = fileURLToPath(new URL('../../hal/bridge/ftdi-latency.ts', import.meta.url));
      const script = `import(${JSON.stringify(module)}).then(async (m) => process.stdout.write(JSON.stringify(await m.tuneFtdiLatency(${JSON.stringify(port)}, { sysfsRoot: ${JSON.stringify(sysfsRoot())} }))))`;
      const out = execFileSync(process.execPath, ['--import', 'tsx', '-e', script], { uid: 65534, gid: 65534, cwd: fileURLToPath(new URL('../..', import.meta.url)) });
      result = JSON.parse(out.toString());
    } else {
      result = await tuneFtdiLatency(port, { sysfsRoot: sysfsRoot() });
    }
    expect(result).toMatchObject({ outcome: 'denied', device: 'ttyUSB4', fromMs: 16, toMs: 16 });
    expect(result.message).toContain('EACCES');
    expect(result.message).toContain(`echo 1 | sudo tee ${join(sysfsRoot(), 'bus', 'usb-serial', 'devices', 'ttyUSB4', 'latency_timer')}`);
    expect(readFileSync(timer, 'utf8').trim()).toBe('16');
  });

  it('is set by the bridge session as it opens the port, and told to onNotice', async () => {
    const { port, timer } = device('ttyUSB5', '0403', 16);
    const notices: string[] = [];
    // The fake port is a plain file: the open fails after the timer was set.
    const session = new BridgeSession({ path: port, sysfsRoot: sysfsRoot(), onNotice: (m) => notices.push(m), openTimeoutMs: 200 }, { intLevel: () => {}, event: () => {} });
    await session.connect().catch(() => {});
    await session.close().catch(() => {});
    expect(readFileSync(timer, 'utf8').trim()).toBe('1');
    expect(notices).toEqual(['ttyUSB5: FTDI latency timer 16 → 1 ms']);
  });
});
