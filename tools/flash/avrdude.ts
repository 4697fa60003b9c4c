/**
 * avrdude (7.1, Debian's) as a library: the command line, its progress bar as callbacks, and its
 * failure messages as typed errors. Message texts were taken from avrdude 7.1 runs against a
 * missing path, a dead pty, a non-tty file and the simulated Uno (test/flash/).
 */
import { spawn } from 'node:child_process';
import { FlashError } from './errors.js';

export interface AvrdudeUpload {
  /** avrdude programmer id (`arduino` = STK500v1 as optiboot speaks it). */
  readonly programmer: string;
  /** avrdude part id (`m328p`). */
  readonly part: string;
  readonly baud: number;
  readonly port: string;
  readonly hexFile: string;
  /** Sync attempts (`-x attempts=N`; avrdude's default is 10, each costing a 5 s timeout). */
  readonly attempts?: number;
}

export type AvrdudePhase = 'write' | 'verify';

export function avrdudeArgs(upload: AvrdudeUpload): string[] {
  return [
    '-c', upload.programmer,
    '-p', upload.part,
    '-b', String(upload.baud),
    '-P', upload.port,
    ...(upload.attempts !== undefined ? ['-x', `attempts=${upload.attempts}`] : []),
    // -D: no chip erase; optiboot erases each page as it writes it (and ignores chip erase).
    '-D',
    '-U', `flash:w:${upload.hexFile}:i`,
  ];
}

/**
 * avrdude's progress bar, fed stderr chunks as they come: `Writing | ####…#### | 100% 0.42s`, one
 * `#` per 2 %. A `Reading` bar after a `Writing` bar is the verify pass.
 */
export class ProgressParser {
  private text = '';
  private phase: AvrdudePhase | undefined;
  private hashes = 0;
  private wrote = false;

  constructor(private readonly onProgress: (phase: AvrdudePhase, percent: number) => void) {}

  push(chunk: string): void {
    this.text += chunk;
    for (;;) {
      if (this.phase === undefined) {
        const match = /(Writing|Reading) \| /.exec(this.text);
        if (!match) {
          // Keep only what could be the start of a bar label.
          this.text = this.text.slice(-16);
          return;
        }
        this.text = this.text.slice(match.index + match[0].length);
        const writing = match[1] === 'Writing';
        // A Reading bar before any Writing bar (a plain read) is not reported.
        this.phase = writing ? 'write' : this.wrote ? 'verify' : undefined;
        if (writing) this.wrote = true;
        this.hashes = 0;
        if (this.phase === undefined) {
          this.text = this.text.replace(/^[^|]*\|/, '');
          continue;
        }
        this.onProgress(this.phase, 0);
      }
      let i = 0;
      for (; i < this.text.length; i++) {
        const char = this.text[i];
        if (char === '#') {
          this.hashes++;
          this.onProgress(this.phase, Math.min(100, this.hashes * 2));
        } else if (char === '|') {
          if (this.hashes < 50) this.onProgress(this.phase, 100);
          this.phase = undefined;
          i++;
          break;
        }
      }
      this.text = this.text.slice(i);
      if (this.phase !== undefined) return;
    }
  }
}

/** avrdude's stderr after a failed run → the error a person can act on. */
export function classifyAvrdudeFailure(output: string, upload: AvrdudeUpload, exitCode: number | null): FlashError {
  const details = { output: lastLines(output), exitCode };
  const port = upload.port;
  if (/cannot open port .*No such file or directory/i.test(output)) {
    return new FlashError('no-such-port', `no such port: ${port}`, { ...details, hint: PORT_HINT });
  }
  if (/cannot open port .*Permission denied/i.test(output)) {
    return new FlashError('permission-denied', `permission denied opening ${port}`, { ...details, hint: DIALOUT_HINT });
  }
  if (/cannot set attributes for port/i.test(output)) {
    return new FlashError('not-a-serial-port', `${port} is not a serial port`, { ...details, hint: PORT_HINT });
  }
  if (/not in sync|programmer is not responding|unable to open programmer/i.test(output)) {
    return noAnswer(output, upload, exitCode);
  }
  if (/expected signature for|signature .*(mismatch|invalid)/i.test(output)) {
    return new FlashError('wrong-board', `the chip on ${port} is not a ${upload.part}`, {
      ...details,
      hint: 'Choose the board that matches the hardware.',
    });
  }
  if (/address 0x[0-9a-f]+ out of range|exceeds/i.test(output)) {
    return new FlashError('sketch-too-large', 'the sketch does not fit in flash', details);
  }
  if (/verification error|verification mismatch/i.test(output)) {
    return new FlashError('verify-failed', 'flash verification failed: the board holds a different image', {
      ...details,
      hint: 'A sketch that reaches into the bootloader section cannot be written; otherwise retry (cable, power).',
    });
  }
  return new FlashError('avrdude-failed', `avrdude failed (exit ${exitCode})`, details);
}

export const DIALOUT_HINT =
  'Serial ports belong to the "dialout" group: sudo usermod -aG dialout "$USER", then log out and in again.';
export const PORT_HINT = 'Is the board plugged in? Boards usually appear as /dev/ttyACM0 (Uno) or /dev/ttyUSB0 (Nano clones).';

/**
 * The bootloader never synchronised. avrdude's `resp=0xNN` tells apart a line where something
 * answers with the wrong bytes (another baud rate, or a sketch rather than a bootloader) from one
 * where nothing answers at all.
 */
export function noAnswer(output: string, upload: AvrdudeUpload, exitCode: number | null, waitedMs?: number): FlashError {
  const garbled = /resp=0x(?!00\b)[0-9a-f]{2}/i.test(output);
  const within = waitedMs === undefined ? '' : ` within ${Math.round(waitedMs / 1000)} s`;
  return new FlashError('no-answer', `no answer from the bootloader on ${upload.port} at ${upload.baud} baud${within}`, {
    output: lastLines(output),
    exitCode,
    hint: garbled
      ? `something answers, but not as a bootloader at ${upload.baud} baud: a Nano with the old bootloader needs --board nano-old (57600 baud), ` +
        'and a board that did not reset is still running its sketch (press RESET just as flashing starts)'
      : 'nothing answers: a wrong --board (a Nano with the old bootloader needs --board nano-old, 57600 baud), another program holding the port ' +
        '(a serial monitor, spinet run), a board that does not auto-reset (press RESET just as flashing starts), or no bootloader on the chip',
  });
}

/** avrdude's own last words: its last few non-blank lines, without the sign-off. */
export function lastLines(output: string, count = 6): string {
  return output
    .split(/\r?\n|\r/)
    .map((line) => line.trimEnd())
    .filter((line) => line && !/^avrdude(:)? done\.\s+Thank you\.$/.test(line))
    .slice(-count)
    .join('\n');
}

export interface RunAvrdudeOptions {
  readonly avrdude?: string;
  readonly onProgress?: (phase: AvrdudePhase, percent: number) => void;
  /** Kill avrdude after this long (default 120 s). */
  readonly timeoutMs?: number;
  /**
   * Kill avrdude when the bootloader has not answered this long after it started (default 7 s):
   * avrdude's own retries (10 attempts of a 5 s read timeout each) take about a minute to give up,
   * and a bootloader that answers does so within about a second of the reset.
   */
  readonly syncTimeoutMs?: number;
  /** Stop avrdude: it is killed, and the promise rejects (kind `interrupted`) once it has exited. */
  readonly signal?: AbortSignal;
}

export const SYNC_TIMEOUT_MS = 7000;
/** How long avrdude gets to exit on SIGTERM before SIGKILL. */
const KILL_GRACE_MS = 2000;
/** avrdude's line once the programmer (the bootloader) answered and the part's signature was read. */
const SYNCED = /AVR device initialized/;

/** Run avrdude; resolves with its output on success, rejects with a FlashError once avrdude has exited. */
export function runAvrdude(upload: AvrdudeUpload, options: RunAvrdudeOptions = {}): Promise<string> {
  const parser = new ProgressParser(options.onProgress ?? (() => {}));
  const syncTimeoutMs = options.syncTimeoutMs ?? SYNC_TIMEOUT_MS;
  const timeoutMs = options.timeoutMs ?? 120_000;
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(new FlashError('interrupted', 'stopped before avrdude started'));
      return;
    }
    const child = spawn(options.avrdude ?? 'avrdude', avrdudeArgs(upload), { stdio: ['ignore', 'pipe', 'pipe'] });
    const started = performance.now();
    let output = '';
    let synced = false;
    let stopped: 'sync' | 'timeout' | 'abort' | undefined;
    const timers: NodeJS.Timeout[] = [];
    const stop = (why: 'sync' | 'timeout' | 'abort') => {
      if (stopped || child.exitCode !== null || child.signalCode !== null) return;
      stopped = why;
      child.kill('SIGTERM');
      timers.push(setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS));
    };
    const collect = (data: Buffer) => {
      const text = data.toString('utf8');
      output += text;
      parser.push(text);
      if (!synced && SYNCED.test(output)) {
        synced = true;
        clearTimeout(syncTimer);
      }
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const syncTimer = setTimeout(() => stop('sync'), syncTimeoutMs);
    timers.push(syncTimer, setTimeout(() => stop('timeout'), timeoutMs));
    const onAbort = () => stop('abort');
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const cleanUp = () => {
      for (const timer of timers) clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
    };
    child.once('error', (error: NodeJS.ErrnoException) => {
      cleanUp();
      reject(
        error.code === 'ENOENT'
          ? new FlashError('avrdude-missing', 'avrdude is not installed', { hint: AVRDUDE_INSTALL })
          : new FlashError('avrdude-failed', `could not run avrdude: ${error.message}`),
      );
    });
    child.once('close', (code) => {
      cleanUp();
      if (stopped === 'abort') reject(new FlashError('interrupted', 'avrdude stopped before it finished', { output: lastLines(output), exitCode: code }));
      else if (stopped === 'sync') reject(noAnswer(output, upload, code, performance.now() - started));
      else if (stopped === 'timeout') reject(new FlashError('avrdude-failed', `avrdude did not finish within ${Math.round(timeoutMs / 1000)} s`, { output: lastLines(output), exitCode: code }));
      else if (code === 0) resolve(output);
      else reject(classifyAvrdudeFailure(output, upload, code));
    });
  });
}

export const AVRDUDE_INSTALL = 'sudo apt-get install avrdude';
