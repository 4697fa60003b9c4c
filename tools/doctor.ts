/**
 * `spinet doctor`: checks a board with an ENC28J60 end to end, in order, and stops at the first
 * failure with the one thing to fix. Each check talks to the chip with plain SPI commands (DS-ENC
 * §4, Table 4-1), not through the driver, so a fault shows as what it is: a wire, not a timeout.
 */
import type { Hal } from '../src/drivers/hal.js';
import type { Clock } from '../src/time/clock.js';
import type { Random } from '../src/time/random.js';
import { formatIpv4, type MacAddress } from '../src/wire/address.js';
import { Enc28j60Nic } from '../src/drivers/enc28j60/driver.js';
import { Stack } from '../src/stack/stack.js';
import { createStackDhcpClient } from '../src/app/stack-adapter.js';
import type { DhcpLease } from '../src/app/dhcp/client.js';

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

export interface DoctorOptions {
  /** What the board said about itself (the bridge's HELLO), shown in the first check. */
  readonly board?: { name: string; version: number };
  /** Rounds of 256-byte patterns written to and read back from the buffer memory. */
  readonly memoryRounds?: number;
  /**
   * The last check: bring the driver and a stack up on the board, take a DHCP lease and ping the
   * gateway it names. Left out, the checks end at the link.
   */
  readonly network?: { readonly clock: Clock; readonly random: Random; readonly mac: MacAddress; readonly leaseTimeoutMs?: number };
}

// SPI opcodes and registers (DS-ENC Table 3-1, 4-1). Kept here: the doctor must not depend on the
// driver it is there to rule out.
const RCR = 0x00, WCR = 0x40, BFS = 0x80, BFC = 0xa0, RBM = 0x3a, WBM = 0x7a, SRC = 0xff;
const EIE = 0x1b, EIR = 0x1c, ESTAT = 0x1d, ECON2 = 0x1e, ECON1 = 0x1f;
const ERDPTL = 0x00, EWRPTL = 0x02, ERXNDL = 0x0a, EDMASTL = 0x10, EDMANDL = 0x12, EDMADSTL = 0x14;
const EREVID = 0x12, MISTAT = 0x0a, MICMD = 0x12, MIREGADR = 0x14, MIRDH = 0x19;
const PHSTAT2 = 0x11, PHSTAT2_LSTAT_HIGH = 0x04;
const KNOWN_REVISIONS: Record<number, string> = { 0x02: 'B1', 0x04: 'B4', 0x05: 'B5', 0x06: 'B7' };
/** Scratch area for the memory test: the top of the buffer, beyond any receive ring at reset. */
const SCRATCH = 0x1e00;

const tx = (...bytes: number[]) => ({ write: Uint8Array.from(bytes) });
const rd = (opcode: number) => ({ write: Uint8Array.of(opcode), read: 1 });
const bank = (b: number) => [tx(BFC | ECON1, 0x03), ...(b ? [tx(BFS | ECON1, b)] : [])];

export async function diagnoseEnc28j60(hal: Hal, options: DoctorOptions = {}): Promise<DoctorReport> {
  const checks: DoctorCheck[] = [];
  const done = (check: DoctorCheck) => {
    checks.push(check);
    return check.ok;
  };
  const report = () => ({ ok: checks.every((c) => c.ok), checks });
  const spi = (batch: Parameters<Hal['spi']['transfer']>[0]) => hal.spi.transfer(batch);

  done({ name: 'board', ok: true, detail: options.board ? `${options.board.name}, bridge protocol ${options.board.version}` : hal.name });

  // SPI: a soft reset (errata #2: wait 1 ms or more), then three registers with known values.
  await spi([tx(BFC | ECON2, 0x20)]); // leave power-save, or SRC is ignored (errata #19)
  await hal.delay(0.3);
  await spi([tx(SRC)]);
  await hal.delay(2);
  const id = await spi([rd(RCR | ESTAT), rd(RCR | ECON2), ...bank(3), rd(RCR | EREVID), ...bank(0)]);
  const [estat, econ2, revid] = [id[0]!, id[1]!, id[2]!];
  const idText = `ESTAT 0x${hex(estat)}, ECON2 0x${hex(econ2)}, EREVID 0x${hex(revid)}`;
  if ([estat, econ2, revid].every((b) => b === 0xff)) {
    done({ name: 'spi', ok: false, detail: `every register reads 0xFF (${idText}): MISO floats`, fix: 'check the MISO wire, the chip select wire (D10) and the module\'s 3.3 V power' });
    return report();
  }
  if ([estat, econ2, revid].every((b) => b === 0x00)) {
    done({ name: 'spi', ok: false, detail: `every register reads 0x00 (${idText}): MISO is held low`, fix: 'check MISO for a short to ground, SCK, and the module\'s power' });
    return report();
  }
  const revision = KNOWN_REVISIONS[revid];
  if (!revision || econ2 !== 0x80) {
    done({ name: 'spi', ok: false, detail: `the chip answers but not as an ENC28J60 after reset (${idText})`, fix: 'check SCK and MOSI (a bit lost shifts every command), and that the module is an ENC28J60' });
    return report();
  }
  done({ name: 'spi', ok: true, detail: `ENC28J60 rev. ${revision} (${idText})` });

  // Buffer memory: patterns written with WBM and read back with RBM.
  const rounds = options.memoryRounds ?? 8;
  let wrong = 0;
  for (let round = 0; round < rounds; round++) {
    const pattern = memoryPattern(round);
    const r = await spi([
      tx(WCR | EWRPTL, SCRATCH & 0xff), tx(WCR | (EWRPTL + 1), SCRATCH >> 8),
      { write: Uint8Array.of(WBM, ...pattern) },
      tx(WCR | ERDPTL, SCRATCH & 0xff), tx(WCR | (ERDPTL + 1), SCRATCH >> 8),
      { write: Uint8Array.of(RBM), read: pattern.length },
    ]);
    for (let i = 0; i < pattern.length; i++) if (r[i] !== pattern[i]) wrong++;
  }
  const total = rounds * 256;
  if (wrong > 0) {
    const rate = ((wrong / total) * 100).toFixed(2);
    done({ name: 'memory', ok: false, detail: `${wrong} of ${total} bytes read back wrong (${rate} %)`, fix: 'a flaky SCK or MOSI line: shorten the jumper wires, reseat them, check the ground between the boards' });
    return report();
  }
  done({ name: 'memory', ok: true, detail: `${total} bytes written and read back intact` });

  // INT: a one-byte DMA copy raises DMAIF; with DMAIE and INTIE the chip pulls INT low (DS-ENC §12.1.3).
  let sawInterrupt = hal.interrupt.asserted;
  const unsubscribe = hal.interrupt.onChange((asserted) => {
    if (asserted) sawInterrupt = true;
  });
  await spi([
    tx(BFC | EIR, 0x20),
    tx(WCR | EDMASTL, SCRATCH & 0xff), tx(WCR | (EDMASTL + 1), SCRATCH >> 8),
    tx(WCR | EDMANDL, SCRATCH & 0xff), tx(WCR | (EDMANDL + 1), SCRATCH >> 8),
    tx(WCR | EDMADSTL, (SCRATCH + 0x10) & 0xff), tx(WCR | (EDMADSTL + 1), (SCRATCH + 0x10) >> 8),
    tx(WCR | EIE, 0x80 | 0x20),
    tx(BFS | ECON1, 0x20),
  ]);
  await hal.delay(5);
  const eir = (await spi([rd(RCR | EIR)]))[0]!;
  await spi([tx(WCR | EIE, 0), tx(BFC | EIR, 0x20)]);
  await hal.delay(1);
  unsubscribe();
  if (!(eir & 0x20)) {
    done({ name: 'interrupt', ok: false, detail: `the chip did not finish a DMA copy (EIR 0x${hex(eir)})`, fix: 'the chip is not working reliably: check its power and its 25 MHz crystal' });
    return report();
  }
  if (!sawInterrupt) {
    done({ name: 'interrupt', ok: false, detail: 'the chip raised an interrupt (DMAIF) but the board saw no change on INT', fix: 'check the INT wire (to D2), or run without it: the driver then polls' });
    return report();
  }
  done({ name: 'interrupt', ok: true, detail: 'INT went low when the chip raised DMAIF' });

  // Reset line: a value written to ERXND must be back at its reset value (0x1FFF) after a pulse.
  if (!hal.reset) {
    done({ name: 'reset', ok: true, detail: 'no reset line on this board: skipped' });
  } else {
    await spi([tx(WCR | ERXNDL, 0x34), tx(WCR | (ERXNDL + 1), 0x02)]);
    await hal.reset.pulse(1);
    await hal.delay(1);
    const r = await spi([rd(RCR | ERXNDL), rd(RCR | (ERXNDL + 1))]);
    const erxnd = r[0]! | (r[1]! << 8);
    if (erxnd !== 0x1fff) {
      done({ name: 'reset', ok: false, detail: `ERXND still 0x${erxnd.toString(16)} after a reset pulse (expected 0x1fff)`, fix: 'check the reset wire to the module\'s RST pin' });
      return report();
    }
    done({ name: 'reset', ok: true, detail: 'a pulse on the reset line reset the chip' });
  }

  // PHY link: PHSTAT2.LSTAT through MII (DS-ENC §3.3.1).
  await spi([...bank(2), tx(WCR | MIREGADR, PHSTAT2), tx(WCR | MICMD, 0x01), ...bank(0)]);
  await hal.delay(0.05);
  const mii = await spi([...bank(3), { write: Uint8Array.of(RCR | MISTAT), read: 2 }, ...bank(2), tx(WCR | MICMD, 0), { write: Uint8Array.of(RCR | MIRDH), read: 2 }, ...bank(0)]);
  const lstat = (mii[3]! & PHSTAT2_LSTAT_HIGH) !== 0;
  if (!lstat) {
    done({ name: 'link', ok: false, detail: 'the PHY sees no link (PHSTAT2.LSTAT clear)', fix: 'plug the cable into a switch port that is on, and check the link LED at both ends' });
    return report();
  }
  done({ name: 'link', ok: true, detail: 'the PHY sees a link (10BASE-T)' });
  if (options.network) await checkNetwork(hal, options.network, done);
  return report();
}

/** DHCP, then a ping of the lease's router, through the real driver and stack. */
async function checkNetwork(hal: Hal, network: NonNullable<DoctorOptions['network']>, done: (check: DoctorCheck) => boolean): Promise<void> {
  const { clock, random, mac } = network;
  const nic = new Enc28j60Nic({ hal, clock, mac, name: 'enc28j60' });
  const stack = new Stack({ clock, random });
  const iface = stack.addInterface(nic);
  try {
    await stack.start();
    const client = createStackDhcpClient(stack, iface.index, { startupDelayMs: { min: 0, max: 0 } });
    const lease = await new Promise<DhcpLease | undefined>((resolve) => {
      const timer = clock.schedule(network.leaseTimeoutMs ?? 30_000, () => resolve(undefined));
      client.once('bound', (l) => {
        timer.cancel();
        resolve(l);
      });
      client.start();
    });
    client.stop({ release: true });
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

function hex(byte: number): string {
  return byte.toString(16).padStart(2, '0');
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
