/**
 * The simulated board's ENC28J60 is strict: the real sketch and the driver run against a chip that
 * reports every misuse, and a misuse fails the test (SimNode.close()). Half duplex against an
 * auto-negotiating switch port, as the driver defaults to, with frames on the wire at 10 Mbit/s.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/time/virtual-clock.js';
import { VirtualLan } from '../../hal/lan/switch.js';
import { startTcpService } from '../../src/app/services/tcp.js';
import { BOARD_ADDRESS, createPeer, createSimNode, echo, sha256, testPattern, type SimNode, type SimNodeOptions, type StackNode } from './sim-node.js';

/** ATmega328P data addresses (datasheet §36, register summary) and the CS pin's bit. */
const SPCR = 0x4c, SPDR = 0x4e, PORTB = 0x25, CS_BIT = 0x04;

let node: SimNode | undefined;
let peer: StackNode | undefined;

afterEach(async () => {
  await peer?.stack.stop();
  await node?.close();
  node = peer = undefined;
});

/** A simulated board on its own LAN, and its AVR (the tests drive its SPI registers directly). */
async function boardCpu() {
  const clock = new VirtualClock();
  node = await createSimNode({ clock, lan: new VirtualLan(clock) });
  return node.board.mcu.cpu!;
}

/** The strict reports so far, as one string; they are taken (close() would fail on them). */
function takeViolations(): string {
  const violations = node!.violations as string[];
  return violations.splice(0).join('\n');
}

/** A 64 KiB echo from the peer through the board; the virtual seconds it took. */
async function echoThroughBoard(options: Partial<Omit<SimNodeOptions, 'chip'>> = {}): Promise<number> {
  const clock = new VirtualClock();
  const lan = new VirtualLan(clock);
  node = await createSimNode({ clock, lan, ...options });
  peer = await createPeer(clock, lan);
  await startTcpService(node.net, 'echo', 7);
  const data = testPattern(64 * 1024, 3);
  const started = clock.now();
  const back = await echo(peer.net, 7, BOARD_ADDRESS, data);
  expect(sha256(back)).toBe(sha256(data));
  return (clock.now() - started) / 1000;
}

describe('the simulated board runs a strict ENC28J60', () => {
  it('echoes 64 KiB in half duplex (the default) with no strict report and no frame cut short', async () => {
    const seconds = await echoThroughBoard();
    expect(node!.nic.events['tx-preempted'] ?? 0).toBe(0);
    expect(node!.violations).toEqual([]);
    console.log(`64 KiB echo, half duplex: ${seconds.toFixed(2)} s virtual`);
  }, 300_000);

  it('echoes 64 KiB in full duplex against a port forced to full duplex, with no strict report', async () => {
    const seconds = await echoThroughBoard({ driverOptions: { fullDuplex: true }, chipOptions: { linkPartner: 'full-duplex' } });
    expect(node!.violations).toEqual([]);
    console.log(`64 KiB echo, full duplex: ${seconds.toFixed(2)} s virtual`);
  }, 300_000);

  it.each([
    ['SPI mode 1 (CPHA)', 0x04, /SPI mode 1 .*mode 0 only/],
    ['LSB first (DORD)', 0x20, /DORD set: the ENC28J60 shifts the most significant bit first/],
  ])('the simulated AVR honours SPCR: %s is reported, and the chip reads garbage', async (_name, bits, message) => {
    const cpu = await boardCpu();
    const readEstat = async () => (await node!.hal.spi.transfer([{ write: Uint8Array.of(0x1d), read: 1 }]))[0]!;
    const before = await readEstat();
    cpu.writeData(SPCR, cpu.data[SPCR]! | bits);
    const after = await readEstat();
    expect(after).not.toBe(before);
    cpu.writeData(SPCR, cpu.data[SPCR]! & ~bits);
    expect(takeViolations()).toMatch(message);
  }, 120_000);

  it('reports chip select raised in the middle of a byte', async () => {
    const cpu = await boardCpu();
    cpu.writeData(PORTB, cpu.data[PORTB]! & ~CS_BIT); // CS (D10 = PB2) low
    cpu.writeData(SPDR, 0x1d); // a byte starts: 16 cycles at fosc/2
    cpu.writeData(PORTB, cpu.data[PORTB]! | CS_BIT); // and CS goes high at once
    expect(takeViolations()).toMatch(/chip select raised mid-byte/);
  }, 120_000);

  it('reports chip select raised less than 210 ns after the last clock (DS-ENC t_CSH)', async () => {
    const cpu = await boardCpu();
    cpu.writeData(PORTB, cpu.data[PORTB]! & ~CS_BIT);
    cpu.writeData(SPDR, 0x1d);
    cpu.cycles += 16 + 1; // the byte's 16 cycles, then one more: 62.5 ns
    cpu.tick();
    cpu.writeData(PORTB, cpu.data[PORTB]! | CS_BIT);
    expect(takeViolations()).toMatch(/chip select raised 1 cycles after the last clock \(< 210 ns hold\)/);
  }, 120_000);

  it('reports a misuse on the board path: ERXFCON written while RXEN is set', async () => {
    const clock = new VirtualClock();
    const lan = new VirtualLan(clock);
    node = await createSimNode({ clock, lan });
    // WCR ERXFCON needs bank 1: BFS ECON1 BSEL0, then WCR 0x18, then back to bank 0.
    await node!.hal.spi.transfer([{ write: Uint8Array.of(0x80 | 0x1f, 0x01) }, { write: Uint8Array.of(0x40 | 0x18, 0x00) }, { write: Uint8Array.of(0xa0 | 0x1f, 0x03) }]);
    expect(takeViolations()).toMatch(/ERXFCON changed while ECON1.RXEN is set/);
  }, 120_000);
});
