/**
 * The serial ports on this machine, as serialport's own `SerialPort.list()` finds them, and which
 * Arduino each looks like by its USB vendor:product. `spinet ports` and `spinet flash` list the
 * same way.
 *
 * The IDs are the USB-IF assignments the boards' USB-serial chips enumerate with (the same ones
 * Arduino's boards.txt matches on, `vid.N`/`pid.N`): Arduino's own ATmega16U2/8U2 firmware
 * (vendor 2341), WCH's CH340 (1a86:7523) on most Nano clones, FTDI's FT232R (0403:6001) on the
 * genuine Nano and the Duemilanove.
 */

/** A port as listed: its path and, for USB adapters, vendor/product IDs (lower-case hex). */
export interface ListedPort {
  readonly path: string;
  readonly vendorId?: string;
  readonly productId?: string;
  readonly manufacturer?: string;
}

/** What a USB ID says about the board behind it. */
export interface BoardGuess {
  /** For a person: "an Arduino Uno", "a CH340 adapter: likely a Nano clone with the old bootloader". */
  readonly looksLike: string;
  /** The `spinet flash --board` name to use. */
  readonly board: string;
  /** A second choice worth naming (a Nano's two bootloaders). */
  readonly orBoard?: { readonly board: string; readonly when: string };
}

const USB_BOARDS: Record<string, BoardGuess> = {
  '2341:0043': { looksLike: 'an Arduino Uno', board: 'uno' },
  '2341:0001': { looksLike: 'an Arduino Uno', board: 'uno' },
  '2a03:0043': { looksLike: 'an Arduino Uno', board: 'uno' },
  '2341:0042': { looksLike: 'an Arduino Mega 2560', board: 'mega2560' },
  '2341:0010': { looksLike: 'an Arduino Mega 2560', board: 'mega2560' },
  '2a03:0042': { looksLike: 'an Arduino Mega 2560', board: 'mega2560' },
  // Clone makers ship the old ATmegaBOOT (57600 baud) far more often than optiboot.
  '1a86:7523': {
    looksLike: 'a CH340 USB-serial adapter: likely a Nano clone with the old bootloader (57600 baud)',
    board: 'nano-old',
    orBoard: { board: 'nano', when: 'if it was flashed with optiboot' },
  },
  // Arduino moved the Nano to optiboot in 2018; older ones and the Duemilanove have ATmegaBOOT.
  '0403:6001': {
    looksLike: 'an FTDI FT232R: a Nano or a Duemilanove',
    board: 'nano',
    orBoard: { board: 'nano-old', when: 'for one from before 2018 or a Duemilanove (old bootloader, 57600 baud)' },
  },
};

export function guessBoard(port: ListedPort): BoardGuess | undefined {
  if (!port.vendorId || !port.productId) return undefined;
  return USB_BOARDS[`${port.vendorId.toLowerCase()}:${port.productId.toLowerCase()}`];
}

/**
 * What a port's USB ID suggests, for a line about it: "an Arduino Uno: --board uno", the flag
 * between `before` and `after` (a command around it), then the other board it may be.
 */
export function boardSuggestion(guess: BoardGuess, before = '', after = ''): string {
  return `${guess.looksLike}: ${before}--board ${guess.board}${after}${guess.orBoard ? ` (or --board ${guess.orBoard.board} ${guess.orBoard.when})` : ''}`;
}

/** Every serial port serialport lists (without udev: the names USB adapters take, no IDs). */
export async function listSerialPorts(): Promise<ListedPort[]> {
  const { SerialPort } = await import('serialport');
  const listed = await SerialPort.list().catch(listWithoutUdev);
  return listed.map((port) => {
    const info = port as ListedPort;
    return {
      path: info.path,
      ...(info.vendorId ? { vendorId: info.vendorId } : {}),
      ...(info.productId ? { productId: info.productId } : {}),
      ...(info.manufacturer ? { manufacturer: info.manufacturer } : {}),
    };
  });
}

/**
 * serialport lists Linux ports through `udevadm` (package udev); without it (a container), the
 * device names USB serial adapters take, with no vendor/product to show.
 */
async function listWithoutUdev(error: Error & { code?: string }): Promise<ListedPort[]> {
  if (error.code !== 'ENOENT') throw error;
  const { readdirSync } = await import('node:fs');
  return readdirSync('/dev')
    .filter((name) => /^tty(ACM|USB)\d+$/.test(name))
    .sort()
    .map((name) => ({ path: `/dev/${name}` }));
}

/** `2341:0043 Arduino (www.arduino.cc)`, or the manufacturer alone, or nothing. */
export function usbLabel(port: ListedPort): string {
  if (!port.vendorId) return port.manufacturer ?? '';
  return `${port.vendorId}:${port.productId ?? '????'}${port.manufacturer ? ` ${port.manufacturer}` : ''}`;
}

/** Processes (pid and command) that hold `path` open, from /proc/PID/fd; empty where /proc cannot tell. */
export async function portHolders(path: string): Promise<Array<{ pid: number; command: string }>> {
  const { readdir, readlink, readFile, realpath } = await import('node:fs/promises');
  let target: string;
  try {
    target = await realpath(path);
  } catch {
    return [];
  }
  const holders: Array<{ pid: number; command: string }> = [];
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      if ((await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')) !== target) continue;
      const command = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0').filter(Boolean).join(' ');
      holders.push({ pid, command });
      break;
    }
  }
  return holders;
}
