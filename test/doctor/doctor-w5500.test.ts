import { describe, expect, it } from 'vitest';
import { W5500Emulator } from '../../hal/w5500/emulator.js';
import { MockHal } from '../../hal/mock/mock-hal.js';
import { SeededRandom } from '../../src/time/random.js';
import { diagnose, formatDoctorReport, type DoctorChip, type DoctorReport } from '../../tools/doctor.js';
import { virtualBench } from '../support/virtual-bench.js';
import { Wiring, type WiringFault } from './wiring.js';

/**
 * `spinet doctor` on a W5500, named (`--chip w5500`) and found by the probe (`--chip auto`): on a
 * mock board and on the simulated Uno (the bridge sketch in avr8js), each wiring fault injected
 * between the chip and the board; it stops at the first failing check and names the wire. The chip
 * is strict, so the doctor's own SPI — socket 0 opened before its buffer is touched, every command
 * after the last was accepted — is checked too.
 */

type Fault = WiringFault | 'no-link';

/** The W5500's checks: the link before INT, whose test needs a frame on the wire. */
const W5500_CHECKS = ['board', 'spi', 'memory', 'reset', 'link', 'interrupt'];

const FAULTS = [
  ['miso-cut', 'spi', /0xFF.*MISO floats/, /MISO wire, the chip select/],
  ['cs-cut', 'spi', /0xFF.*MISO floats/, /chip select wire \(D10\)/],
  ['miso-stuck-low', 'spi', /0x00.*held low/, /short to ground/],
  ['noisy-mosi', 'memory', /bytes read back wrong \(\d+\.\d+ %\)/, /flaky SCK or MOSI/],
  ['reset-not-wired', 'reset', /RTR still 0x1234 .*expected 0x7d0/, /reset wire from D9.*--no-reset/],
  ['no-link', 'link', /no link \(PHYCFGR 0x[0-9a-f]{2}: LNK clear/, /cable/],
  ['int-not-wired', 'interrupt', /raised an interrupt \(SEND_OK\) but the board saw no change on INT/, /INT wire/],
] as const;

function expectStoppedAt(report: DoctorReport, failing: string, detail: RegExp, fix: RegExp): void {
  expect(report.ok).toBe(false);
  const last = report.checks.at(-1)!;
  expect(last, formatDoctorReport(report)).toMatchObject({ name: failing, ok: false });
  expect(last.detail).toMatch(detail);
  expect(last.fix).toMatch(fix);
  expect(report.checks.slice(0, -1).every((c) => c.ok)).toBe(true);
}

function mockBoard(fault: Fault) {
  const b = virtualBench();
  const chip = new W5500Emulator({ clock: b.clock, strict: true, onStrictViolation: (m) => b.violations.push(m) });
  chip.plugInto(b.lan);
  if (fault === 'no-link') chip.setLinkUp(false);
  const wiring = new Wiring(chip, fault === 'no-link' ? 'none' : fault);
  const hal = new MockHal({ clock: b.clock, slave: wiring, interrupt: wiring, reset: wiring, bytesOverTime: true });
  return { b, chip, hal, run: (chipChoice: DoctorChip) => b.settle(diagnose(hal, { chip: chipChoice }), 10_000) };
}

describe('spinet doctor on a mock board with a W5500', () => {
  it.each(['w5500', 'auto'] as const)('with --chip %s, passes every check on a healthy board, the strict chip silent', async (chipChoice) => {
    const { b, chip, run } = mockBoard('none');
    chip.recordTransmitted = true;
    const report = await run(chipChoice);
    expect(report.checks.map((c) => [c.name, c.ok])).toEqual(W5500_CHECKS.map((name) => [name, true]));
    expect(report.checks[1]!.detail).toMatch(/^W5500 \(header 01 02 03, VERSIONR 0x04, RTR 0x07d0\)/);
    if (chipChoice === 'auto') expect(report.checks[1]!.detail).toMatch(/found by probing \(VERSIONR 0x04\)/);
    expect(report.checks.find((c) => c.name === 'interrupt')!.detail).toBe('INT went low when the chip raised SEND_OK');
    expect(formatDoctorReport(report)).toMatch(/all checks passed/);
    b.expectNoViolations();
    // One frame on the wire, of the local experimental EtherType; socket 0 is closed again.
    expect(chip.transmitted.map((f) => (f[12]! << 8) | f[13]!)).toEqual([0x88b5]);
    expect(chip.peekSocket(0, 'Sn_SR')).toBe(0x00);
    expect(chip.interruptAsserted).toBe(false);
  });

  it('with a network check, takes a DHCP lease and pings the gateway through the W5500 driver; names a LAN without DHCP', async () => {
    const { LabGateway } = await import('../../tools/lab-gateway.js');
    const withGateway = mockBoard('none');
    // What crosses the switch, in order: the lease goes back (DHCPRELEASE, unicast to the server)
    // only after the ping's answer is in, or the reply would come to an address no longer ours.
    const wire: string[] = [];
    const lan = withGateway.b.lan as unknown as { transmitTo(target: { deliver(f: Uint8Array): void }, frame: Uint8Array): void };
    const transmitTo = lan.transmitTo.bind(lan);
    lan.transmitTo = (target, frame) => {
      if (frame[12] === 0x08 && frame[13] === 0x00 && !(frame[0]! & 1)) {
        if (frame[23] === 1) wire.push(frame[34] === 8 ? 'echo request' : 'echo reply');
        if (frame[23] === 17 && frame[36] === 0 && frame[37] === 67) wire.push('dhcp to the server');
      }
      transmitTo(target, frame);
    };
    const gateway = await LabGateway.start({ clock: withGateway.b.clock, random: new SeededRandom(3), lan: withGateway.b.lan });
    const network = { clock: withGateway.b.clock, random: new SeededRandom(4), mac: Uint8Array.of(2, 0x5e, 0, 0, 0, 0x0b), leaseTimeoutMs: 10_000 };
    const report = await withGateway.b.settle(diagnose(withGateway.hal, { chip: 'auto', network }), 30_000);
    expect(report.checks.map((c) => [c.name, c.ok])).toEqual([...W5500_CHECKS, 'dhcp', 'ping'].map((name) => [name, true]));
    expect(report.checks.at(-1)!.detail).toMatch(/gateway 192\.0\.2\.1 answered/);
    expect(wire.slice(-3)).toEqual(['echo request', 'echo reply', 'dhcp to the server']);
    withGateway.b.expectNoViolations();
    await gateway.stop();

    const without = mockBoard('none');
    const lonely = await without.b.settle(diagnose(without.hal, { chip: 'w5500', network: { ...network, clock: without.b.clock } }), 30_000);
    expect(lonely.checks.at(-1)).toMatchObject({ name: 'dhcp', ok: false, fix: expect.stringMatching(/DHCP server/) });
  });

  describe.each(['w5500', 'auto'] as const)('with --chip %s', (chipChoice) => {
    it.each(FAULTS)('with %s, stops at the %s check and names the fix', async (fault, failing, detail, fix) => {
      const { run } = mockBoard(fault);
      expectStoppedAt(await run(chipChoice), failing, detail, fix);
    });
  });

  it('skips the reset check where the chip\'s reset is not the board\'s to pulse (--no-reset: the Ethernet Shield 2), and goes on', async () => {
    const { b, hal } = mockBoard('reset-not-wired');
    const report = await b.settle(diagnose(hal, { chip: 'auto', noResetLine: true }), 10_000);
    expect(report.checks.map((c) => [c.name, c.ok])).toEqual(W5500_CHECKS.map((name) => [name, true]));
    expect(report.checks.find((c) => c.name === 'reset')!.detail).toMatch(/not wired .*--no-reset.*skipped/);
    b.expectNoViolations();
  });

  it('names a chip that answers like no W5500 (a wrong VERSIONR), probed or named', async () => {
    const b = virtualBench();
    const chip = new W5500Emulator({ clock: b.clock, version: 0x51 });
    const hal = new MockHal({ clock: b.clock, slave: chip, interrupt: chip, reset: chip });
    const named = await b.settle(diagnose(hal, { chip: 'w5500' }), 1_000);
    expectStoppedAt(named, 'spi', /answers but not as a W5500 after reset \(header 01 02 03, VERSIONR 0x51/, /SCK and MOSI.*a W5500/);
    const probed = await b.settle(diagnose(hal, { chip: 'auto' }), 1_000);
    expectStoppedAt(probed, 'spi', /VERSIONR reads 0x51, not 0x04/, /a W5500 or an ENC28J60/);
  });
});

describe('spinet doctor on the simulated Uno with a W5500 (the bridge sketch in avr8js)', () => {
  type SimHal = Awaited<ReturnType<import('../../boards/sim/index.js').SimulatedBoard['openHal']>>;

  async function simulated(fault: Fault, run: (hal: SimHal, lan: import('../../hal/lan/switch.js').VirtualLan) => Promise<void>): Promise<string[]> {
    const { VirtualClock } = await import('../../src/time/virtual-clock.js');
    const { VirtualLan } = await import('../../hal/lan/switch.js');
    const { createSimulatedEthernetBoard } = await import('../../tools/boards.js');
    const clock = new VirtualClock();
    const lan = new VirtualLan(clock);
    const violations: string[] = [];
    const sim = await createSimulatedEthernetBoard({
      board: 'uno', chip: 'w5500', clock, lan, linkModel: 'ideal', onStrictViolation: (m) => violations.push(m),
      wiring: (chip) => {
        if (fault === 'no-link') (chip as W5500Emulator).setLinkUp(false);
        return new Wiring(chip, fault === 'no-link' ? 'none' : fault);
      },
    });
    const hal = await sim.openHal();
    try {
      await run(hal, lan);
    } finally {
      await hal.close();
      await sim.stop();
    }
    return violations;
  }

  it('passes every check through the real sketch and the strict chip, probed, up to a DHCP lease and a ping of the gateway', async () => {
    const { LabGateway } = await import('../../tools/lab-gateway.js');
    const violations = await simulated('none', async (hal, lan) => {
      const clock = lan.clock;
      const gateway = await LabGateway.start({ clock, random: new SeededRandom(3), lan });
      const network = { clock, random: new SeededRandom(4), mac: Uint8Array.of(2, 0x5e, 0, 0, 0, 0x0b), leaseTimeoutMs: 30_000 };
      const report = await diagnose(hal, { chip: 'auto', board: { name: hal.hello!.name, version: hal.hello!.version }, network });
      await gateway.stop();
      expect(report.checks.filter((c) => !c.ok)).toEqual([]);
      expect(report.checks.map((c) => c.name)).toEqual([...W5500_CHECKS, 'dhcp', 'ping']);
      expect(report.checks[0]!.detail).toMatch(/uno, bridge protocol/);
      expect(report.checks.at(-1)!.detail).toMatch(/gateway 192\.0\.2\.1 answered/);
    });
    expect(violations).toEqual([]);
  }, 90_000);

  it.each(FAULTS)('with %s, stops at the %s check and names the fix', async (fault, failing, detail, fix) => {
    await simulated(fault, async (hal) => expectStoppedAt(await diagnose(hal, { chip: 'auto' }), failing, detail, fix));
  }, 60_000);
});
