import { describe, expect, it } from 'vitest';
import { bench as enc28j60Bench, MAC_A } from '../enc28j60/harness.js';
import { bench as w5500Bench } from '../w5500/harness.js';
import { VirtualNic } from '../../hal/lan/switch.js';
import { CaptureNic, type CapturedFrame } from '../../src/capture/capture.js';
import { decodeFrame, formatSummary } from '../../src/capture/decode.js';
import { Stack } from '../../src/stack/stack.js';
import { SeededRandom } from '../../src/time/random.js';
import { parseMac } from '../../src/wire/address.js';
import { udp } from './frames.js';

/**
 * `spinet log --promisc`: the chip's receive filter off — the ENC28J60's ERXFCON = CRCEN only
 * (DS-ENC §8), the W5500's Sn_MR without MFEN (DS-W §4.2, socket 0 opened again) — so the board
 * logs a frame between two other hosts on its LAN (one the switch floods because it has not
 * learned the destination yet) while its stack still ignores it.
 */
const CHIPS = [
  { chip: 'enc28j60', station: () => { const b = enc28j60Bench(); return { b, station: b.station(MAC_A, 'enc28j60') }; } },
  { chip: 'w5500', station: () => { const b = w5500Bench(); return { b, station: b.station(MAC_A, 'w5500') }; } },
];

describe.each(CHIPS)('promiscuous capture on the $chip', ({ station: open }) => {
  it('shows a frame between two other hosts only with the chip filter off; the stack drops it either way', async () => {
    const { b, station } = open();
    const logged: CapturedFrame[] = [];
    const capture = new CaptureNic(station.board.nic, b.clock, [{ record: (f) => logged.push({ ...f, bytes: f.bytes.slice() }) }]);
    const stack = new Stack({ clock: b.clock, random: new SeededRandom(1) });
    stack.addInterface(capture).addAddress('192.0.2.10', 24);
    await b.settle(stack.start());
    const hostA = new VirtualNic(b.lan, parseMac('02:00:00:00:00:0a'), 'host-a');
    hostA.attach({ receive: () => {}, linkChange: () => {} });
    await hostA.start();
    // Host B (02:00:00:00:00:0b) never sent anything: the switch does not know its port and floods.
    const aToB = udp(5353, 53, new Uint8Array(20));
    const others = () => logged.filter((f) => f.direction === 'in' && decodeFrame(f.bytes).destination === '02:00:00:00:00:0b');

    await b.until(() => station.board.nic.linkUp, 5_000);
    hostA.transmit(aToB);
    await b.run(20);
    expect(others()).toEqual([]);
    const dropsBefore = stack.counters().ethernet.dropped['wrong-mac'] ?? 0;

    station.board.nic.setPromiscuous(true);
    await b.run(5);
    expect(station.board.nic.status().promiscuous).toBe(true);
    hostA.transmit(aToB);
    await b.run(20);
    expect(others().map((f) => formatSummary(decodeFrame(f.bytes)))).toEqual([
      '02:00:00:00:00:0a > 02:00:00:00:00:0b, IPv4, 192.0.2.10.5353 > 192.0.2.1.53: UDP, length 20',
    ]);
    // The stack above ignored it: counted as not addressed to us.
    expect(stack.counters().ethernet.dropped['wrong-mac']).toBe(dropsBefore + 1);

    station.board.nic.setPromiscuous(false);
    await b.run(5);
    hostA.transmit(aToB);
    await b.run(20);
    expect(others()).toHaveLength(1);
    b.expectNoViolations();
  });
});
