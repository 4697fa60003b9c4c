/**
 * `spinet extcap`: Wireshark's extcap protocol (extcap(4)) — the interface list, link types,
 * options, filter checks — and captures through tshark itself, stopped as Wireshark stops them
 * (SIGTERM, or the FIFO closed by the reader).
 */
import { describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { createReadStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { findExecutable } from '../../hal/lan/tap.js';

const SPINET = fileURLToPath(new URL('../../tools/spinet.mjs', import.meta.url));
const execFileAsync = promisify(execFile);
const tshark = await findExecutable('tshark');
const mkfifo = await findExecutable('mkfifo');
if (!tshark) console.warn('extcap through tshark skipped: tshark is not installed (apt-get install tshark)');

async function extcap(args: string[]): Promise<{ code: number; stdout: string }> {
  try {
    const { stdout } = await execFileAsync(process.execPath, [SPINET, 'extcap', ...args], { timeout: 30_000 });
    return { code: 0, stdout };
  } catch (error) {
    const e = error as { code: number; stdout: string };
    return { code: e.code, stdout: e.stdout };
  }
}

/** Enhanced Packet Blocks (type 6) in a pcapng byte stream. */
function packetBlocks(bytes: Buffer): number {
  let count = 0;
  for (let at = 0; at + 8 <= bytes.length; ) {
    const length = bytes.readUInt32LE(at + 4);
    if (length < 12 || at + length > bytes.length) break;
    if (bytes.readUInt32LE(at) === 6) count++;
    at += length;
  }
  return count;
}

describe('spinet extcap', () => {
  it('answers Wireshark\'s questions: interfaces, link type, options, capture filters', async () => {
    expect((await extcap(['--extcap-interfaces', '--extcap-version=4.0'])).stdout.trim().split('\n')).toEqual([
      'extcap {version=0.1.0}{display=spinet}',
      'interface {value=spinet-sim}{display=spinet: simulated Uno with an ENC28J60 on the built-in LAN}',
      'interface {value=spinet-mock}{display=spinet: emulated ENC28J60 (mock HAL) on the built-in LAN}',
      'interface {value=spinet-mock-w5500}{display=spinet: emulated W5500 (mock HAL) on the built-in LAN}',
      'interface {value=spinet-serial}{display=spinet: a board on a serial port (choose it in the interface options)}',
    ]);
    expect((await extcap(['--extcap-interface=spinet-mock', '--extcap-dlts'])).stdout).toBe('dlt {number=1}{name=EN10MB}{display=Ethernet}\n');
    expect((await extcap(['--extcap-interface=spinet-mock', '--extcap-config'])).stdout.trim().split('\n')).toEqual([
      'arg {number=0}{call=--ip}{display=Static address A/N}{type=string}{tooltip=Empty: take the address from DHCP}',
      "arg {number=1}{call=--promisc}{display=Promiscuous (the chip's receive filter off)}{type=boolflag}{default=false}",
    ]);
    expect(await extcap(['--extcap-interface=spinet-mock', '--extcap-capture-filter=tcp and port 80'])).toEqual({ code: 0, stdout: '' });
    expect(await extcap(['--extcap-interface=spinet-mock', '--extcap-capture-filter=tcp port'])).toMatchObject({ code: 1, stdout: expect.stringMatching(/ends where a port number should follow/) });
  });

  it.skipIf(!mkfifo)('captures into the FIFO, and stops when the reader closes it or on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spinet-extcap-'));
    try {
      for (const stopBy of ['fifo', 'SIGTERM'] as const) {
        const fifo = join(dir, `capture-${stopBy}`);
        await execFileAsync(mkfifo!, [fifo]);
        const child = spawn(process.execPath, [SPINET, 'extcap', '--extcap-interface=spinet-mock', '--capture', `--fifo=${fifo}`], { stdio: ['ignore', 'ignore', 'pipe'] });
        const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
        const reader = createReadStream(fifo);
        const chunks: Buffer[] = [];
        // The DHCP exchange gives 4 frames within a second or two of the board starting.
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('no 4 frames in 40 s')), 40_000);
          reader.on('data', (chunk: Buffer | string) => {
            chunks.push(Buffer.from(chunk));
            if (packetBlocks(Buffer.concat(chunks)) >= 4) {
              clearTimeout(timer);
              resolve();
            }
          });
        });
        if (stopBy === 'fifo') reader.destroy();
        else child.kill('SIGTERM');
        const code = await Promise.race([exited, new Promise((resolve) => setTimeout(() => resolve('still running'), 20_000))]);
        reader.destroy();
        if (code === 'still running') child.kill('SIGKILL');
        expect(code, `stopped by ${stopBy}`).toBe(0);
        expect(Buffer.concat(chunks).readUInt32LE(0)).toBe(0x0a0d0d0a);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it.skipIf(!tshark)('installs in one command; tshark lists the interfaces and captures from one until it has enough', async () => {
    const home = mkdtempSync(join(tmpdir(), 'spinet-extcap-home-'));
    const env = { ...process.env, HOME: home, XDG_CONFIG_HOME: join(home, '.config') };
    try {
      await execFileAsync(process.execPath, [SPINET, 'extcap', '--install'], { env });
      expect(readFileSync(join(home, '.config/wireshark/extcap/spinet'), 'utf8')).toMatch(/^#!\/bin\/sh\n.*\nexec ".*" ".*spinet\.mjs" extcap "\$@"\n$/);
      const { stdout: list } = await execFileAsync(tshark!, ['-D'], { env, timeout: 60_000 });
      expect(list).toMatch(/\d+\. spinet-sim \(spinet: simulated Uno with an ENC28J60 on the built-in LAN\)/);
      expect(list).toMatch(/\d+\. spinet-mock /);
      expect(list).toMatch(/\d+\. spinet-mock-w5500 \(spinet: emulated W5500/);
      // A DHCP lease, DISCOVER to ACK, from each chip's board.
      for (const iface of ['spinet-mock', 'spinet-mock-w5500']) {
        const file = join(home, `${iface}.pcapng`);
        await execFileAsync(tshark!, ['-i', iface, '-c', '4', '-w', file], { env, timeout: 90_000 });
        const { stdout } = await execFileAsync(tshark!, ['-r', file, '-T', 'fields', '-e', 'dhcp.option.dhcp'], { env });
        expect(stdout.trim().split('\n')).toEqual(['1', '2', '3', '5']);
      }
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  }, 180_000);
});
