/**
 * `spinet doctor`: checks a board with an ENC28J60 or a W5500 end to end, in order, and stops at
 * the first failure with the one thing to fix. The sequence, the verdicts and the report are the
 * same for both chips; each check's SPI is the chip's own (tools/doctor/enc28j60.ts, w5500.ts),
 * plain frames from its datasheet rather than the driver, so a fault shows as what it is: a wire,
 * not a timeout. With `chip: 'auto'` the chip is the one that answers the probe the drivers use
 * (src/drivers/probe.ts).
 */
import type { Hal } from '../src/drivers/hal.js';
import { ChipProbeError, probeChip } from '../src/drivers/probe.js';
import type { Clock } from '../src/time/clock.js';
import type { Random } from '../src/time/random.js';
import { formatIpv4, type MacAddress } from '../src/wire/address.js';
import { Stack } from '../src/stack/stack.js';
import { createStackDhcpClient } from '../src/app/stack-adapter.js';
import type { DhcpLease } from '../src/app/dhcp/client.js';
import { CheckFailure, type ChipProbes, type WiringCheck } from './doctor/probes.js';
import { enc28j60Probes } from './doctor/enc28j60.js';
import { w5500Probes } from './doctor/w5500.js';

export interface DoctorCheck {
  readonly name: string;
  readonly ok: boolean;
  /** What was seen. */
  readonly detail: string;
  /** The one thing to do about it (failures only). */
  readonly fix?: string;
}

export interface DoctorReport {
  readonly ok: boolean;
  readonly checks: DoctorCheck[];
}

export type DoctorChip = 'enc28j60' | 'w5500' | 'auto';

export interface DoctorOptions {
  /** The chip on the board, or `auto` (the default): the one that answers the probe. */
  readonly chip?: DoctorChip;
  /** What the board said about itself (the bridge's HELLO), shown in the first check. */
  readonly board?: { name: string; version: number };
  /** The chip's reset pin is not wired to the board's reset line (D9): skip the reset check. */
  readonly noResetLine?: boolean;
  /** Rounds of 256-byte patterns written to and read back from the buffer memory. */
  readonly memoryRounds?: number;
  /** The station address of the frame the W5500's interrupt check sends (default: `network.mac`, else 02:5e:00:00:00:0a). */
  readonly mac?: MacAddress;
  /**
   * The last check: bring the driver and a stack up on the board, take a DHCP lease and ping the
   * gateway it names. Left out, the checks end at the link.
   */
  readonly network?: { readonly clock: Clock; readonly random: Random; readonly mac: MacAddress; readonly leaseTimeoutMs?: number };
}

const DEFAULT_MAC = Uint8Array.of(0x02, 0x5e, 0x00, 0x00, 0x00, 0x0a);
const MISO_FIX = 'check the MISO wire, the chip select wire (D10) and the module\'s 3.3 V power';
const SCK_MOSI = 'check SCK and MOSI (a bit lost shifts every command)';

/** `diagnose` with the ENC28J60 named. */
export function diagnoseEnc28j60(hal: Hal, options: DoctorOptions = {}): Promise<DoctorReport> {
  return diagnose(hal, { ...options, chip: 'enc28j60' });
}

export async function diagnose(hal: Hal, options: DoctorOptions = {}): Promise<DoctorReport> {
  const checks: DoctorCheck[] = [];
  const done = (check: DoctorCheck) => {
    checks.push(check);
    return check.ok;
  };
  const report = () => ({ ok: checks.every((c) => c.ok), checks });
  const probesFor = (chip: 'enc28j60' | 'w5500') => (chip === 'w5500' ? w5500Probes(hal, { mac: options.mac ?? options.network?.mac ?? DEFAULT_MAC }) : enc28j60Probes(hal));

  done({ name: 'board', ok: true, detail: options.board ? `${options.board.name}, bridge protocol ${options.board.version}` : hal.name });

  let probes: ChipProbes;
  let found = '';
  if ((options.chip ?? 'auto') === 'auto') {
    try {
      const probed = await probeChip(hal);
      probes = probesFor(probed.chip);
      found = `; found by probing (${probed.detail})`;
    } catch (error) {
      if (!(error instanceof ChipProbeError)) throw error;
      done(misoFault(error.readings, error.seen) ?? { name: 'spi', ok: false, detail: error.message, fix: `${SCK_MOSI}, and that the module is a W5500 or an ENC28J60` });
      return report();
    }
  } else {
    probes = probesFor(options.chip as 'enc28j60' | 'w5500');
  }

  // SPI: a reset by command, then registers whose values after a reset are known.
  const id = await probes.identify();
  if (!id.recognised) {
    done(misoFault(id.bytes, id.text) ?? { name: 'spi', ok: false, detail: `the chip answers but not as ${article(probes.chip)} after reset (${id.text})`, fix: `${SCK_MOSI}, and that the module is ${article(probes.chip)}` });
    return report();
  }
  done({ name: 'spi', ok: true, detail: `${id.recognised} (${id.text})${found}` });

  const steps: Record<WiringCheck, () => Promise<DoctorCheck>> = {
    memory: () => checkMemory(probes, options.memoryRounds ?? 8),
    interrupt: () => checkInterrupt(hal, probes),
    reset: () => checkReset(hal, probes, options.noResetLine === true),
    link: () => checkLink(probes),
  };
  for (const step of probes.order) {
    let check: DoctorCheck;
    try {
      check = await steps[step]();
    } catch (error) {
      if (!(error instanceof CheckFailure)) throw error;
      check = { name: step, ok: false, detail: error.detail, fix: error.fix };
    }
    if (!done(check)) return report();
  }
  if (options.network) await checkNetwork(hal, probes, options.network, done);
  return report();
}

/** Every byte 0xFF or every byte 0x00: nothing drives MISO, or something holds it low. */
function misoFault(bytes: readonly number[], text: string): DoctorCheck | undefined {
  if (bytes.every((b) => b === 0xff)) return { name: 'spi', ok: false, detail: `every register reads 0xFF (${text}): MISO floats`, fix: MISO_FIX };
  if (bytes.every((b) => b === 0x00)) return { name: 'spi', ok: false, detail: `every register reads 0x00 (${text}): MISO is held low`, fix: 'check MISO for a short to ground, SCK, and the module\'s power' };
  return undefined;
}

/** Patterns written to the chip's buffer memory and read back: a flipped bit is a flaky line. */
async function checkMemory(probes: ChipProbes, rounds: number): Promise<DoctorCheck> {
  const memory = await probes.openMemory();
  let wrong = 0;
  for (let round = 0; round < rounds; round++) {
    const pattern = memoryPattern(round);
    const r = await memory.roundTrip(pattern);
    for (let i = 0; i < pattern.length; i++) if (r[i] !== pattern[i]) wrong++;
  }
  await memory.close();
  const total = rounds * 256;
  if (wrong > 0) {
    const rate = ((wrong / total) * 100).toFixed(2);
    return { name: 'memory', ok: false, detail: `${wrong} of ${total} bytes read back wrong (${rate} %)`, fix: 'a flaky SCK or MOSI line: shorten the jumper wires, reseat them, check the ground between the boards' };
  }
  return { name: 'memory', ok: true, detail: `${total} bytes written and read back intact` };
}

/** The chip raises an interrupt; the board must see INT fall. */
async function checkInterrupt(hal: Hal, probes: ChipProbes): Promise<DoctorCheck> {
  let sawInterrupt = hal.interrupt.asserted;
  const unsubscribe = hal.interrupt.onChange((asserted) => {
    if (asserted) sawInterrupt = true;
  });
  let outcome;
  try {
    outcome = await probes.raiseInterrupt();
  } finally {
    unsubscribe();
  }
  if (!outcome.raised) return { name: 'interrupt', ok: false, detail: outcome.detail, fix: outcome.fix };
  if (!sawInterrupt) {
    return { name: 'interrupt', ok: false, detail: `the chip raised an interrupt (${outcome.what}) but the board saw no change on INT`, fix: 'check the INT wire (to D2), or run without it: the driver then polls' };
  }
  return { name: 'interrupt', ok: true, detail: `INT went low when the chip raised ${outcome.what}` };
}

/** A register written before a pulse on the reset line must read its reset value after it. */
async function checkReset(hal: Hal, probes: ChipProbes, notWired: boolean): Promise<DoctorCheck> {
  if (!hal.reset) return { name: 'reset', ok: true, detail: 'no reset line on this board: skipped' };
  if (notWired) return { name: 'reset', ok: true, detail: 'the chip\'s reset is not wired to the board\'s reset line (--no-reset): skipped' };
  const probe = probes.resetProbe;
  await probe.spoil();
  await hal.reset.pulse(probe.pulseMs);
  await hal.delay(probe.readyMs);
  const value = await probe.read();
  if (value !== probe.resetValue) {
    return { name: 'reset', ok: false, detail: `${probe.register} still 0x${value.toString(16)} after a reset pulse (expected 0x${probe.resetValue.toString(16)})`, fix: 'check the reset wire from D9 to the module\'s RST pin; on a shield that ties RST to the board\'s own reset (the Ethernet Shield 2) pass --no-reset' };
  }
  return { name: 'reset', ok: true, detail: 'a pulse on the reset line reset the chip' };
}

async function checkLink(probes: ChipProbes): Promise<DoctorCheck> {
  const { up, detail } = await probes.link();
  if (!up) return { name: 'link', ok: false, detail, fix: 'plug the cable into a switch port that is on, and check the link LED at both ends' };
  return { name: 'link', ok: true, detail };
}

/** DHCP, then a ping of the lease's router, through the real driver and stack. */
async function checkNetwork(hal: Hal, probes: ChipProbes, network: NonNullable<DoctorOptions['network']>, done: (check: DoctorCheck) => boolean): Promise<void> {
  const { clock, random, mac } = network;
  const nic = probes.nic({ hal, clock, mac, name: probes.chip.toLowerCase() });
  const stack = new Stack({ clock, random });
  const iface = stack.addInterface(nic);
  let client: ReturnType<typeof createStackDhcpClient> | undefined;
  try {
    await stack.start();
    const dhcp = createStackDhcpClient(stack, iface.index, { startupDelayMs: { min: 0, max: 0 } });
    client = dhcp;
    const lease = await new Promise<DhcpLease | undefined>((resolve) => {
      const timer = clock.schedule(network.leaseTimeoutMs ?? 30_000, () => resolve(undefined));
      dhcp.once('bound', (l) => {
        timer.cancel();
        resolve(l);
      });
      dhcp.start();
    });
    if (!lease) {
      done({ name: 'dhcp', ok: false, detail: `no DHCP lease within ${((network.leaseTimeoutMs ?? 30_000) / 1000).toFixed(0)} s`, fix: 'frames do not get through, or the LAN has no DHCP server: check the switch port and that a DHCP server (the router) is on' });
      return;
    }
    done({ name: 'dhcp', ok: true, detail: `leased ${formatIpv4(lease.address)}/${lease.prefixLength} from ${formatIpv4(lease.serverIdentifier)}` });
    const router = lease.routers[0];
    if (router === undefined) {
      done({ name: 'ping', ok: true, detail: 'the lease names no router: nothing to ping' });
      return;
    }
    try {
      const reply = await stack.ping(router);
      done({ name: 'ping', ok: true, detail: `the gateway ${formatIpv4(router)} answered in ${reply.rttMs.toFixed(1)} ms` });
    } catch (error) {
      const code = (error as { code?: string }).code ?? String(error);
      done({ name: 'ping', ok: false, detail: `no answer from the gateway ${formatIpv4(router)} (${code})`, fix: 'the gateway does not answer ping, or frames are lost: try another switch port or cable' });
    }
  } finally {
    // The lease goes back only now (released, the address is gone, and a late reply with it); the
    // release is on the wire before the stack stops.
    await client?.stop({ release: true });
    await stack.stop();
  }
}

/** 256 bytes per round: alternating bits, walking ones, then a counter and a mixed pattern. */
function memoryPattern(round: number): Uint8Array {
  const out = new Uint8Array(256);
  for (let i = 0; i < 256; i++) {
    switch (round % 4) {
      case 0: out[i] = i & 1 ? 0xaa : 0x55; break;
      case 1: out[i] = 1 << (i % 8); break;
      case 2: out[i] = i; break;
      default: out[i] = (i * 167 + round * 31) & 0xff;
    }
  }
  return out;
}

/** "an ENC28J60", "a W5500". */
function article(chip: string): string {
  return `${/^[AEFHILMNORSX]/.test(chip) ? 'an' : 'a'} ${chip}`;
}

/** The report as text: one line a check, the fix under a failure. */
export function formatDoctorReport(report: DoctorReport): string {
  const lines: string[] = [];
  for (const check of report.checks) {
    lines.push(`${check.ok ? 'ok  ' : 'FAIL'} ${check.name.padEnd(9)} ${check.detail}`);
    if (check.fix) lines.push(`     → ${check.fix}`);
  }
  lines.push(report.ok ? 'all checks passed' : 'stopped at the first failure');
  return lines.join('\n');
}
