import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SerialPort } from 'serialport';
import { describe, expect, it } from 'vitest';
import { AutoResetBoard } from '../../boards/bootloader/auto-reset.js';
import { AvrMcu } from '../../boards/bootloader/avr-mcu.js';
import { flashBytes, parseIntelHex, programMemory } from '../../boards/bootloader/intel-hex.js';
import { PtyBridge } from '../../boards/bootloader/pty.js';
import { ProgressParser, classifyAvrdudeFailure } from '../../tools/flash/avrdude.js';
import { FlashError, commandLine, flash, type FlashPhase } from '../../tools/flash/index.js';
import { RealClock } from '../../src/time/real-clock.js';
import { haveFlashTools, scratchDir } from './tools.js';
import { createSimulatedEthernetBoard } from '../../tools/boards.js';

const fixtures = fileURLToPath(new URL('./fixtures/', import.meta.url));
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const helloA = join(fixtures, 'hello-A.hex');
const bridgeUnoHex = join(repoRoot, 'boards/bridge/uno.hex');
const work = scratchDir('spinet-flash-');

const upload = { programmer: 'arduino', part: 'm328p', baud: 115200, port: '/dev/ttyACM0', hexFile: 'x.hex' };

describe('avrdude output', () => {
  it('turns the Writing and Reading bars into write and verify progress, in whatever chunks they arrive', () => {
    const seen: string[] = [];
    const parser = new ProgressParser((phase, percent) => seen.push(`${phase} ${percent}`));
    const stderr =
      'avrdude: AVR device initialized\nReading | ################################################## | 100% 0.00s\n' +
      'avrdude: writing 238 bytes flash ...\n\nWriting | ' + '#'.repeat(50) + ' | 100% 0.01s\n\n' +
      'avrdude: verifying ...\n\nReading | ' + '#'.repeat(50) + ' | 100% 0.00s\n';
    for (let i = 0; i < stderr.length; i += 7) parser.push(stderr.slice(i, i + 7));
    expect(seen[0]).toBe('write 0');
    expect(seen).toContain('write 50');
    expect(seen).toContain('write 100');
    expect(seen.indexOf('verify 0')).toBeGreaterThan(seen.indexOf('write 100'));
    expect(seen.at(-1)).toBe('verify 100');
    expect(seen.filter((s) => s.startsWith('verify'))).toHaveLength(51);
  });

  it.each([
    ['avrdude OS error: cannot open port /dev/ttyACM0: No such file or directory', 'no-such-port', 'ENOENT'],
    ['avrdude OS error: cannot open port /dev/ttyACM0: Permission denied', 'permission-denied', 'EACCES'],
    ['avrdude OS error: cannot set attributes for port /tmp/x: Inappropriate ioctl for device', 'not-a-serial-port', 'ENOTTY'],
    ['avrdude warning: attempt 1 of 1: not in sync: resp=0x00\navrdude error: unable to open programmer arduino on port', 'no-answer', 'ETIMEDOUT'],
    ['avrdude error: expected signature for ATmega328P is 1E 95 0F', 'wrong-board', 'ENODEV'],
    ['avrdude error: verification mismatch\n        device 0xff != input 0x0c at addr 0x7e00', 'verify-failed', 'EIO'],
  ])('classifies "%s"', (output, kind, code) => {
    const error = classifyAvrdudeFailure(output, upload, 1);
    expect([error.kind, error.code]).toEqual([kind, code]);
    if (kind === 'permission-denied') expect(error.hint).toMatch(/dialout/);
  });
});

describe('flash()', () => {
  it('on a dry run, returns the exact avrdude command and runs nothing', async () => {
    const result = await flash({ board: 'uno', port: '/dev/ttyACM0', hex: helloA, dryRun: true });
    expect(result.commands.map(commandLine)).toEqual([
      `avrdude -c arduino -p m328p -b 115200 -P /dev/ttyACM0 -D -U flash:w:${helloA}:i`,
    ]);
    const old = await flash({ board: 'nano-old', port: '/dev/ttyUSB0', build: false, dryRun: true });
    expect(old.hex).toBe(join(repoRoot, 'boards/bridge/nano.hex'));
    expect(old.commands[0].args).toContain('57600');
  });

  it('with build: true, plans the bridge Makefile build and flashes its output', async () => {
    const result = await flash({ board: 'uno', port: '/dev/ttyACM0', build: true, dryRun: true }).catch((e: FlashError) => e);
    if (result instanceof FlashError) {
      expect(result.kind).toBe('toolchain-missing');
      return;
    }
    const bridge = join(repoRoot, 'boards/bridge');
    expect(result.commands.map(commandLine)).toEqual([
      `make -s -C ${bridge} BOARD=uno BRIDGE_BAUD=1000000`,
      `avrdude -c arduino -p m328p -b 115200 -P /dev/ttyACM0 -D -U flash:w:${bridge}/build/uno-1000000/bridge.hex:i`,
    ]);
  });

  it('refuses a sketch that would overwrite the bootloader, before touching the port', async () => {
    const big = join(work, 'big.hex');
    // One data record at 0x7E00 (inside optiboot's section) → a 32 257-byte image.
    writeFileSync(big, ':017E000000' + (0x100 - ((1 + 0x7e + 0x00) & 0xff)).toString(16).padStart(2, '0').toUpperCase() + '\n:00000001FF\n');
    await expect(flash({ board: 'uno', port: '/nonexistent', hex: big })).rejects.toMatchObject({ kind: 'sketch-too-large', code: 'EFBIG' });
  });

  it('reports a missing port as no-such-port (ENOENT)', async () => {
    const error = await flash({ board: 'uno', port: join(work, 'ttyACM9'), hex: helloA }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FlashError);
    expect(error).toMatchObject({ kind: 'no-such-port', code: 'ENOENT' });
  });

  it('rejects an unknown board', async () => {
    await expect(flash({ board: 'esp32', port: '/dev/ttyUSB0', dryRun: true })).rejects.toMatchObject({ kind: 'unknown-board' });
  });
});

describe.skipIf(!haveFlashTools)('flash() with the real avrdude against the simulated Uno on a pty', () => {
  it('uploads the bridge sketch through optiboot, verifies it, and the board then runs it', async () => {
    const mcu = new AvrMcu(programMemory(parseIntelHex(readFileSync(helloA, 'utf8'))));
    const board = new AutoResetBoard(mcu, { clock: new RealClock() });
    board.powerOn();
    const pty = await PtyBridge.start(board, { path: join(work, 'ttyUNO') });
    try {
      const progress: Array<[FlashPhase, number, number]> = [];
      const result = await flash({ board: 'uno', port: pty.path, hex: bridgeUnoHex, onProgress: (...p) => progress.push(p) });

      const image = parseIntelHex(readFileSync(bridgeUnoHex, 'utf8'));
      expect(result.bytes).toBe(image.length);
      expect(flashBytes(mcu.flash).subarray(0, image.length)).toEqual(image);
      expect(progress.at(-1)).toEqual(['verify', image.length, image.length]);
      expect(progress.some(([phase, done]) => phase === 'write' && done === image.length)).toBe(true);

      // Open the port like the host does: auto-reset, 1 s of optiboot, then the bridge's HELLO.
      await pty.ready();
      const port = new SerialPort({ path: pty.path, baudRate: 1_000_000 });
      const received: Buffer[] = [];
      port.on('data', (data: Buffer) => received.push(data));
      // socat notices the open within a second (wait-slave polls), then optiboot waits 1 s.
      for (let waited = 0; waited < 4000 && !Buffer.concat(received).includes('uno'); waited += 100) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await new Promise((resolve) => port.close(resolve));
      const banner = Buffer.concat(received);
      expect(banner.includes('uno')).toBe(true);
      expect(banner.includes('hello A')).toBe(false);
    } finally {
      await pty.close();
      board.close();
    }
  });

  it('uploads through `spinet sim --bootloader`: optiboot behind the 16U2 model answers verify’s page reads at its line rate, not in bursts the 128-byte ring would overwrite', async () => {
    const board = await createSimulatedEthernetBoard({ board: 'uno', chip: 'enc28j60', bootloader: true });
    const pty = await board.servePty(join(work, 'ttySIMBOOT'));
    try {
      const result = await flash({ board: 'uno', port: pty.path, hex: helloA });
      const image = parseIntelHex(readFileSync(helloA, 'utf8'));
      expect(result.bytes).toBe(image.length);
      expect(flashBytes(board.mcu.flash).subarray(0, image.length)).toEqual(image);
      expect(board.link.stats.overflowed).toBe(0);
    } finally {
      await board.stop();
    }
  }, 60_000);

  it('reports a board whose bootloader never answers as no-answer (ETIMEDOUT)', async () => {
    const silent = { open() {}, write() {}, onData: () => () => {} };
    const pty = await PtyBridge.start(silent, { path: join(work, 'ttyDEAD') });
    try {
      await expect(flash({ board: 'uno', port: pty.path, hex: helloA, attempts: 1 })).rejects.toMatchObject({
        kind: 'no-answer',
        code: 'ETIMEDOUT',
      });
    } finally {
      await pty.close();
    }
  });
});
