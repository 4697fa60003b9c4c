/**
 * `spinet ports`: which serial ports answer as a spinet bridge, and with which sketch — the
 * simulated Uno on a pseudo-terminal (`spinet sim --pty`, needs socat) answers as the real board
 * would; a path that is no serial port says so; `--port auto` with no bridge is one line.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describePort } from '../../tools/commands/ports.js';

const SPINET = fileURLToPath(new URL('../../tools/spinet.mjs', import.meta.url));
const haveSocat = await promisify(execFile)('socat', ['-V']).then(() => true, () => false);

function spinet(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [SPINET, ...args], { timeout: 90_000 }, (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr }));
  });
}

describe('a line of spinet ports', () => {
  it('names a bridge by its HELLO, and a port that is none by why not and the --board to flash it with, from its USB ID', () => {
    expect(describePort({ path: '/dev/ttyACM0', vendorId: '2341', productId: '0043', bridge: { version: 2, board: 'uno', pins: 20 } })).toMatch(/^\/dev\/ttyACM0 .*2341:0043.* spinet bridge \(protocol 2, uno, 20 pins\)$/);
    const uno = describePort({ path: '/dev/ttyACM0', vendorId: '2341', productId: '0043', note: 'no answer from a bridge sketch' });
    expect(uno).toContain('no answer from a bridge sketch  looks like an Arduino Uno: spinet flash --board uno --port /dev/ttyACM0');
    const clone = describePort({ path: '/dev/ttyUSB0', vendorId: '1A86', productId: '7523', note: 'no answer from a bridge sketch' });
    expect(clone).toContain('spinet flash --board nano-old --port /dev/ttyUSB0 (or --board nano if it was flashed with optiboot)');
    expect(describePort({ path: '/dev/ttyS0', note: 'opened, but no HELLO' })).toBe('/dev/ttyS0  opened, but no HELLO');
  });
});

describe('spinet ports', () => {
  const dir = mkdtempSync(join(tmpdir(), 'spinet-ports-'));
  let sim: ChildProcess | undefined;
  afterAll(() => {
    sim?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('says a path that is no serial port is not one, exit 1', async () => {
    const result = await spinet(['ports', '/dev/null', '--json']);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toEqual([{ path: '/dev/null', note: "/dev/null is not a serial port: give the board's port, e.g. /dev/ttyACM0 (spinet ports lists them)" }]);
  });

  it.skipIf(!haveSocat)('finds the bridge sketch, its protocol version and board, on the simulated Uno\'s pseudo-terminal', async () => {
    const pty = join(dir, 'uno');
    sim = spawn(process.execPath, [SPINET, 'sim', '--pty', pty], { stdio: ['ignore', 'ignore', 'pipe'] });
    let output = '';
    sim.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`sim not up:\n${output}`)), 60_000);
      sim!.stderr!.on('data', () => /Ctrl-C to stop/.test(output) && (clearTimeout(timer), resolve()));
    });
    // The simulated AVR runs in real time on a loaded machine: give its boot HELLO time.
    const result = await spinet(['ports', pty, '--timeout', '30']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe(`${pty}  spinet bridge (protocol 2, uno, 20 pins)\n`);
  }, 120_000);

  it('--port auto with no bridge anywhere is one line, exit 1', async () => {
    // Only where no USB serial port is plugged in: then the answer is known.
    const listed = await spinet(['ports', '--json']);
    if (JSON.parse(listed.stdout || '[]').length) return;
    const result = await spinet(['ping', '192.0.2.1', '--port', 'auto', '--ip', '192.0.2.10/24']);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('spinet ping: ENOENT: --port auto: no board answers as a spinet bridge (no serial ports found): plug it in, or flash it (spinet flash --port PATH)\n');
  }, 60_000);
});
