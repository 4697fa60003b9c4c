import { describe, expect, it } from 'vitest';
import { Enc28j60Emulator } from '../../hal/enc28j60/emulator.js';
import { MockHal } from '../../hal/mock/mock-hal.js';
import { SeededRandom } from '../../src/time/random.js';
import { diagnoseEnc28j60, formatDoctorReport } from '../../tools/doctor.js';
import { virtualBench } from '../support/virtual-bench.js';
import { Wiring, type WiringFault } from './wiring.js';

/**
 * `spinet doctor` against a mock board with each wiring fault injected: it stops at the first
 * failing check and names the wire. The chip is strict, so the doctor's own SPI is checked too.
 */

type Fault = Exclude<WiringFault, 'cs-cut'> | 'no-link';

function board(fault: Fault) {
  const b = virtualBench();
  const chip = new Enc28j60Emulator({ clock: b.clock, strict: true, onStrictViolation: (m) => b.violations.push(m) });
  chip.plugInto(b.lan);
  if (fault === 'no-link') chip.setLinkUp(false);
  const wiring = new Wiring(chip, fault === 'no-link' ? 'none' : fault);
  const hal = new MockHal({ clock: b.clock, slave: wiring, interrupt: wiring, reset: wiring });
  return { b, hal, run: () => b.settle(diagnoseEnc28j60(hal), 1_000) };
}

describe('spinet doctor on a mock board', () => {
  it('passes every check on a healthy board, without misusing the strict chip', async () => {
    const { b, run } = board('none');
    const report = await run();
    expect(report.checks.map((c) => [c.name, c.ok])).toEqual([
      ['board', true], ['spi', true], ['memory', true], ['interrupt', true], ['reset', true], ['link', true],
    ]);
    expect(report.checks[1]!.detail).toMatch(/rev\. B7/);
    expect(formatDoctorReport(report)).toMatch(/all checks passed/);
    b.expectNoViolations();
  });

  it('with a network check, takes a DHCP lease and pings the gateway through the driver; names a LAN without DHCP', async () => {
    const { LabGateway } = await import('../../tools/lab-gateway.js');
    const withGateway = board('none');
    const gateway = await LabGateway.start({ clock: withGateway.b.clock, random: new SeededRandom(3), lan: withGateway.b.lan });
    const network = { clock: withGateway.b.clock, random: new SeededRandom(4), mac: Uint8Array.of(2, 0x5e, 0, 0, 0, 0x0a), leaseTimeoutMs: 10_000 };
    const report = await withGateway.b.settle(diagnoseEnc28j60(withGateway.hal, { network }), 30_000);
    expect(report.checks.slice(-2).map((c) => [c.name, c.ok])).toEqual([['dhcp', true], ['ping', true]]);
    expect(report.checks.at(-1)!.detail).toMatch(/gateway 192\.0\.2\.1 answered/);
    withGateway.b.expectNoViolations();
    await gateway.stop();

    const without = board('none');
    const lonely = await without.b.settle(diagnoseEnc28j60(without.hal, { network: { ...network, clock: without.b.clock } }), 30_000);
    expect(lonely.checks.at(-1)).toMatchObject({ name: 'dhcp', ok: false, fix: expect.stringMatching(/DHCP server/) });
  });

  it.each([
    ['miso-cut', 'spi', /0xFF.*MISO floats/, /MISO wire, the chip select/],
    ['miso-stuck-low', 'spi', /0x00.*held low/, /short to ground/],
    ['noisy-mosi', 'memory', /bytes read back wrong \(\d+\.\d+ %\)/, /flaky SCK or MOSI/],
    ['int-not-wired', 'interrupt', /saw no change on INT/, /INT wire/],
    ['reset-not-wired', 'reset', /still 0x234/, /reset wire/],
    ['no-link', 'link', /no link/, /cable/],
  ] as const)('with %s, stops at the %s check and names the fix', async (fault, failing, detail, fix) => {
    const { run } = board(fault);
    const report = await run();
    expect(report.ok).toBe(false);
    const last = report.checks[report.checks.length - 1]!;
    expect(last.name).toBe(failing);
    expect(last.ok).toBe(false);
    expect(last.detail).toMatch(detail);
    expect(last.fix).toMatch(fix);
    expect(report.checks.slice(0, -1).every((c) => c.ok)).toBe(true);
  });
});

describe('spinet doctor on the simulated board (the bridge sketch in avr8js)', () => {
  it('passes every check through the real sketch and the strict chip, and names an unplugged cable', async () => {
    const { VirtualClock } = await import('../../src/time/virtual-clock.js');
    const { VirtualLan } = await import('../../hal/lan/switch.js');
    const { createSimulatedEnc28j60Board } = await import('../../tools/boards.js');
    const clock = new VirtualClock();
    const lan = new VirtualLan(clock);
    const violations: string[] = [];
    const sim = await createSimulatedEnc28j60Board({ board: 'uno', clock, lan, linkModel: 'ideal', onStrictViolation: (m) => violations.push(m) });
    const hal = await sim.openHal();
    try {
      const healthy = await diagnoseEnc28j60(hal, { board: { name: hal.hello!.name, version: hal.hello!.version } });
      expect(healthy.checks.filter((c) => !c.ok)).toEqual([]);
      expect(healthy.checks.map((c) => c.name)).toEqual(['board', 'spi', 'memory', 'interrupt', 'reset', 'link']);
      (sim.chip as Enc28j60Emulator).unplug();
      const unplugged = await diagnoseEnc28j60(hal);
      expect(unplugged.checks.at(-1)).toMatchObject({ name: 'link', ok: false });
      expect(violations).toEqual([]);
    } finally {
      await hal.close();
      await sim.stop();
    }
  }, 120_000);
});
