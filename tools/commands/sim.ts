import { RealClock } from '../../src/time/real-clock.js';
import { CryptoRandom } from '../../src/time/random.js';
import { parseMac } from '../../src/wire/address.js';
import { VirtualLan } from '../../hal/lan/switch.js';
import { parseLanSpec, TapAttachment } from '../../hal/lan/tap.js';
import { LabGateway } from '../lab-gateway.js';
import { DEFAULT_MAC, untilInterrupted, type Values } from '../node.js';
import { existsSync, lstatSync, readlinkSync } from 'node:fs';
import { UsageError } from '../options.js';

/**
 * `spinet sim --pty PATH`: the simulated board (the committed sketch in avr8js, an emulated
 * ENC28J60 or W5500 on its SPI pins) behind a pseudo-terminal, in real time, until Ctrl-C. Any serial tool
 * can open PATH: `spinet run --board serial --port PATH`, `screen`, `avrdude` (with --bootloader).
 * `--model`: the sketch's TypeScript model instead of the AVR (tools/boards.ts createModelEthernetBoard).
 */
export async function sim(values: Values): Promise<number> {
  const ptyPath = values.pty as string | undefined;
  if (!ptyPath) throw new UsageError('where? spinet sim --pty PATH (e.g. /tmp/spinet-uno)');
  refuseToReplace(ptyPath);
  const boardName = (values['board-def'] as string | undefined) ?? 'uno';
  if (boardName !== 'uno' && boardName !== 'nano') throw new UsageError(`--board-def ${boardName}: only uno and nano can be simulated (avr8js models the ATmega328P)`);
  const chip = (values.chip as string | undefined) ?? 'enc28j60';
  if (chip !== 'enc28j60' && chip !== 'w5500') throw new UsageError(`--chip must be enc28j60 or w5500, not '${chip}'`);
  const chipName = chip === 'w5500' ? 'W5500' : 'ENC28J60';
  let mac: Uint8Array;
  try {
    mac = parseMac((values.mac as string | undefined) ?? DEFAULT_MAC);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const clock = new RealClock();
  const lan = new VirtualLan(clock);
  const lanSpec = parseLanSpec((values.lan as string | undefined) ?? 'sim');
  const cleanups: (() => Promise<void> | void)[] = [];
  try {
    if (lanSpec.kind === 'sim') {
      const gateway = await LabGateway.start({ clock, random: new CryptoRandom(), lan });
      cleanups.push(() => gateway.stop());
      console.error('LAN: built-in simulated LAN with a gateway at 192.0.2.1 (DHCP, DNS, ping, UDP and TCP echo on port 7, HTTP, MQTT on port 1883)');
    } else {
      const tapAddr = values['tap-addr'] as string | undefined;
      const tap = await TapAttachment.open({ ifname: lanSpec.ifname, ...(tapAddr ? { address: tapAddr } : {}) });
      tap.attachTo(lan);
      cleanups.push(() => tap.close());
      console.error(`LAN: TAP device ${lanSpec.ifname}`);
    }
    const { createModelEthernetBoard, createSimulatedEthernetBoard } = await import('../boards.js');
    const model = Boolean(values.model);
    if (model && values.bootloader) throw new UsageError('--bootloader needs the AVR: not with --model');
    const board = model ? await createModelEthernetBoard({ chip, clock, lan, mac }) : await createSimulatedEthernetBoard({ board: boardName, chip, clock, lan, mac, bootloader: Boolean(values.bootloader) });
    cleanups.push(() => board.stop());
    await board.servePty(ptyPath);
    // Listening for Ctrl-C before saying so: a signal right after the lines still shuts down cleanly.
    const interrupted = untilInterrupted();
    const what = model ? 'the bridge sketch\'s TypeScript model, no AVR; its HELLO names it "model"' : 'bridge sketch in avr8js';
    console.error(`simulated ${model ? 'board' : boardName} (${what}, emulated ${chipName}) on ${ptyPath}${values.bootloader ? ' — optiboot answers for 1 s after each open' : ''}`);
    console.log(`try: spinet run --board serial --port ${ptyPath} --dhcp --serve http:80`);
    console.error('Ctrl-C to stop.');
    const signal = await interrupted;
    console.error(`\n${signal}: stopping the simulated board`);
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup();
  }
  return 0;
}

/**
 * The pty's link never replaces a file (socat's link= would): only a link left by an earlier run,
 * pointing at a pseudo-terminal that no longer exists, is taken over.
 */
function refuseToReplace(path: string): void {
  let target: string;
  try {
    const stat = lstatSync(path);
    if (!stat.isSymbolicLink()) throw new UsageError(`--pty ${path} exists and is not a link this command made; it is never replaced: pick a path that does not exist`);
    target = readlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  if (!target.startsWith('/dev/pts/') || existsSync(target)) throw new UsageError(`--pty ${path} exists (a link to ${target}); it is never replaced: pick a path that does not exist`);
}
