/**
 * `spinet flash` as a person meets it: before flashing it says which ports it found and which
 * --board each wants; it says at once what it waits for; a silent bootloader is given up on within
 * 10 s with the reason and avrdude's own last lines; Ctrl-C stops avrdude before spinet exits, so
 * the port is free. The silent board is a pseudo-terminal nobody answers on (socat), driven by the
 * real avrdude.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { PtyBridge } from '../../boards/bootloader/pty.js';
import { flash as flashCommand } from '../../tools/commands/flash.js';
import { FlashError } from '../../tools/flash/index.js';
import { boardMismatch, flashHint } from '../../tools/flash/hint.js';
import { portHolders } from '../../tools/serial-ports.js';
import { haveFlashTools, installed, scratchDir } from './tools.js';

const SPINET = fileURLToPath(new URL('../../tools/spinet.mjs', import.meta.url));
const helloA = fileURLToPath(new URL('./fixtures/hello-A.hex', import.meta.url));
const work = scratchDir('spinet-flashcmd-');

/** A serial port where nothing ever answers: no bootloader behind it. */
const silentBoard = { open() {}, write() {}, onData: () => () => {} };

/** `spinet flash ARGS` as a child process: its stderr so far, and its exit code when it ends. */
function spinetFlash(args: string[], env: NodeJS.ProcessEnv = process.env) {
  const child = spawn(process.execPath, [SPINET, 'flash', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  const run = { child, stderr: '', exited: new Promise<number | null>((resolve) => child.once('exit', resolve)) };
  child.stderr.on('data', (d: Buffer) => (run.stderr += d.toString()));
  return run;
}

/** PIDs of avrdude processes whose command line names `port`. */
function avrdudesOn(port: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (argv[0]?.endsWith('avrdude') && argv.includes(port)) pids.push(Number(entry));
  }
  return pids;
}

const uno = { path: '/dev/ttyACM0', vendorId: '2341', productId: '0043', manufacturer: 'Arduino (www.arduino.cc)' };
const ch340 = { path: '/dev/ttyUSB0', vendorId: '1a86', productId: '7523' };

describe('the hint: ports found, the board each looks like, the install command', () => {
  it('names every port with the --board its USB ID points at, and says how to install a missing avrdude', () => {
    const mega = { path: '/dev/ttyACM1', vendorId: '2341', productId: '0042' };
    const ftdi = { path: '/dev/ttyUSB1', vendorId: '0403', productId: '6001', manufacturer: 'FTDI' };
    const plain = { path: '/dev/ttyS0' };
    expect(flashHint({ ports: [uno, mega, ch340, ftdi, plain], avrdudeInstalled: false })).toEqual([
      'serial ports here:',
      '  /dev/ttyACM0  2341:0043 Arduino (www.arduino.cc)  an Arduino Uno: --board uno',
      '  /dev/ttyACM1  2341:0042  an Arduino Mega 2560: --board mega2560',
      '  /dev/ttyUSB0  1a86:7523  a CH340 USB-serial adapter: likely a Nano clone with the old bootloader (57600 baud): --board nano-old (or --board nano if it was flashed with optiboot)',
      '  /dev/ttyUSB1  0403:6001 FTDI  an FTDI FT232R: a Nano or a Duemilanove: --board nano (or --board nano-old for one from before 2018 or a Duemilanove (old bootloader, 57600 baud))',
      '  /dev/ttyS0',
      'avrdude is not installed: sudo apt-get install avrdude',
    ]);
  });

  it('with one port, gives the whole command to run; with none, says to plug the board in', () => {
    expect(flashHint({ ports: [ch340], avrdudeInstalled: true })).toEqual([
      'serial ports here:',
      '  /dev/ttyUSB0  1a86:7523  a CH340 USB-serial adapter: likely a Nano clone with the old bootloader (57600 baud): --board nano-old (or --board nano if it was flashed with optiboot)',
      'try: spinet flash --board nano-old --port /dev/ttyUSB0',
    ]);
    expect(flashHint({ ports: [], avrdudeInstalled: true })).toEqual([
      'no serial ports found: is the board plugged in (and its USB cable one that carries data)?',
    ]);
  });

  it('warns when the port looks like another board than --board, and not when it may be the one asked for', () => {
    expect(boardMismatch(uno, 'mega2560')).toBe('/dev/ttyACM0 looks like an Arduino Uno, not a mega2560: if flashing fails, try --board uno');
    expect(boardMismatch(uno, 'uno')).toBeUndefined();
    expect(boardMismatch(ch340, 'nano')).toBeUndefined();
    expect(boardMismatch({ path: '/dev/pts/3' }, 'uno')).toBeUndefined();
  });
});

describe.skipIf(!haveFlashTools)('spinet flash against a board whose bootloader never answers', () => {
  it('says within 2 s what it waits for, then gives up within 10 s with the reason — here another program holding the port — and avrdude\'s own words', async () => {
    const pty = await PtyBridge.start(silentBoard, { path: join(work, 'ttySILENT') });
    // A serial monitor left open on the port.
    const monitor = spawn('sh', ['-c', `exec sleep 60 <"${pty.path}"`], { stdio: 'ignore' });
    while ((await portHolders(pty.path)).length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    const lines: Array<{ at: number; text: string }> = [];
    const started = performance.now();
    const record = (text: unknown) => lines.push({ at: performance.now() - started, text: String(text) });
    const write = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => (record(chunk), true));
    const error = vi.spyOn(console, 'error').mockImplementation(record);
    let failure: unknown;
    try {
      failure = await flashCommand({ board: 'uno', port: pty.path, hex: helloA }).catch((e: unknown) => e);
    } finally {
      write.mockRestore();
      error.mockRestore();
      monitor.kill();
      await pty.close();
    }
    const gaveUpAt = performance.now() - started;

    const waiting = lines.find((l) => l.text.startsWith('reset  '));
    expect(waiting?.text).toBe(`reset  resetting the Uno on ${pty.path} and waiting for its bootloader (optiboot, 115200 baud)…\n`);
    expect(waiting!.at).toBeLessThan(2000);
    expect(failure).toBeInstanceOf(FlashError);
    expect(failure).toMatchObject({ kind: 'no-answer', code: 'ETIMEDOUT', message: `no answer from the bootloader on ${pty.path} at 115200 baud within 7 s` });
    // avrdude alone would retry 10 times, 5 s each.
    expect(gaveUpAt).toBeLessThanOrEqual(10_000);
    expect((failure as FlashError).hint).toBe(`${pty.path} is held open by PID ${monitor.pid} (sleep 60): close it and retry`);
    expect((failure as FlashError).details.output).toMatch(/^avrdude.*(not in sync|not responding)/m);
    expect(avrdudesOn(pty.path)).toEqual([]);
  }, 30_000);

  it('on the command line: the one-line reason, then avrdude\'s last lines indented under it, exit 1', async () => {
    const pty = await PtyBridge.start(silentBoard, { path: join(work, 'ttyQUIET') });
    try {
      const run = spinetFlash(['--port', pty.path, '--hex', helloA]);
      expect(await run.exited).toBe(1);
      const lines = run.stderr.trimEnd().split('\n');
      const reason = lines.findIndex((l) => l.startsWith('spinet flash: '));
      expect(lines[reason]).toBe(
        `spinet flash: ETIMEDOUT: no answer from the bootloader on ${pty.path} at 115200 baud within 7 s: nothing answers: ` +
          'a wrong --board (a Nano with the old bootloader needs --board nano-old, 57600 baud), another program holding the port (a serial monitor, spinet run), ' +
          'a board that does not auto-reset (press RESET just as flashing starts), or no bootloader on the chip',
      );
      const own = lines.slice(reason + 1);
      expect(own.length).toBeGreaterThan(0);
      expect(own.length).toBeLessThanOrEqual(6);
      for (const line of own) expect(line).toMatch(/^ {4}avrdude/);
      expect(own.join('\n')).toMatch(/not in sync|not responding/);
    } finally {
      await pty.close();
    }
  }, 60_000);

  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)('%s (Ctrl-C or a kill) while avrdude waits: avrdude is stopped and gone before spinet exits %i, and says the port is free', async (signal, status) => {
    const pty = await PtyBridge.start(silentBoard, { path: join(work, `tty${signal}`) });
    try {
      const run = spinetFlash(['--port', pty.path, '--hex', helloA]);
      // Wait for avrdude to be running on the port (it waits up to 7 s for the bootloader).
      for (let waited = 0; avrdudesOn(pty.path).length === 0; waited += 50) {
        if (waited > 20_000) throw new Error(`avrdude never started:\n${run.stderr}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(run.stderr).toMatch(/^reset {2}resetting the Uno/m);
      // Only spinet gets the signal (a terminal's Ctrl-C would reach avrdude too): spinet must stop it.
      run.child.kill(signal);
      expect(await run.exited).toBe(status);
      expect(avrdudesOn(pty.path)).toEqual([]);
      expect(run.stderr.trimEnd().split('\n').at(-1)).toBe(
        `spinet flash: interrupted (${signal}): avrdude stopped before it finished; ${pty.path} is free (flash again: the bootloader is untouched)`,
      );
    } finally {
      await pty.close();
    }
  }, 60_000);
});

/**
 * The build is a child of spinet too: Ctrl-C during it must stop make before spinet exits. A real
 * build of the sketch takes a few seconds, or nothing when its objects are up to date, so the make
 * here is a stand-in on PATH that records its PID and waits (the rest of the toolchain is the real
 * one, so that flash chooses to build).
 */
const haveBuildTools = haveFlashTools && installed('avr-gcc') && installed('avr-objcopy') && existsSync('/usr/share/arduino/Arduino.mk');

describe.skipIf(!haveBuildTools)('spinet flash interrupted while it builds the sketch (needs avrdude, socat, gcc-avr and arduino-mk from Debian)', () => {
  it('SIGINT while make runs: make is stopped and gone before spinet exits 130, and the port is untouched', async () => {
    const bin = join(work, 'fake-make-bin');
    mkdirSync(bin, { recursive: true });
    const pidFile = join(work, 'make.pid');
    writeFileSync(join(bin, 'make'), `#!/bin/sh\necho $$ > '${pidFile}'\nexec sleep 60\n`);
    chmodSync(join(bin, 'make'), 0o755);
    const pty = await PtyBridge.start(silentBoard, { path: join(work, 'ttyBUILD') });
    try {
      const run = spinetFlash(['--port', pty.path], { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` });
      let pid = 0;
      for (let waited = 0; !pid; waited += 50) {
        if (waited > 20_000) throw new Error(`make never started:\n${run.stderr}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
        pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) : 0;
      }
      expect(existsSync(`/proc/${pid}`)).toBe(true);
      expect(run.stderr).toMatch(/^build /m);
      run.child.kill('SIGINT');
      expect(await run.exited).toBe(130);
      expect(existsSync(`/proc/${pid}`)).toBe(false);
      expect(avrdudesOn(pty.path)).toEqual([]);
      expect(run.stderr.trimEnd().split('\n').at(-1)).toBe(
        `spinet flash: interrupted (SIGINT): the build stopped; ${pty.path} is free (flash again: the bootloader is untouched)`,
      );
    } finally {
      await pty.close();
    }
  }, 60_000);
});
