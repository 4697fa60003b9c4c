import { describe, expect, it } from 'vitest';
import { ImpairedLan, ImpairedNic } from '../../hal/lan/impairment.js';
import { VirtualLan, VirtualNic } from '../../hal/lan/switch.js';
import { Stack } from '../../src/stack/stack.js';
import { VirtualClock } from '../../src/time/virtual-clock.js';
import { SeededRandom } from '../../src/time/random.js';
import { parseMac } from '../../src/wire/address.js';
import type { Nic } from '../../src/link/nic.js';
import { createDgram } from '../../src/socket/dgram.js';

/** Two stacks, A (.10) and B (.11), with ARP pre-resolved; `wrap` may put a wrapper around A's NIC. */
async function twoStacks(clock: VirtualClock, lan: VirtualLan, wrap: (nic: Nic) => Nic = (nic) => nic) {
  const make = async (n: number, nicOf: (nic: Nic) => Nic) => {
    const stack = new Stack({ clock, random: new SeededRandom(n) });
    stack.addInterface(nicOf(new VirtualNic(lan, parseMac(`02:00:00:00:00:${n}`), `vnic${n}`))).addAddress(`192.0.2.${n}`, 24);
    await stack.start();
    return stack;
  };
  const a = await make(10, wrap);
  const b = await make(11, (nic) => nic);
  a.arp.addStatic(1, '192.0.2.11', '02:00:00:00:00:11');
  b.arp.addStatic(1, '192.0.2.10', '02:00:00:00:00:10');
  return { a, b };
}

async function sendAndCount(seed: number) {
  const clock = new VirtualClock();
  const lan = new ImpairedLan(clock, { seed });
  lan.impair('vnic11', { toPort: { loss: 0.2, duplicate: 0.1, reorder: 0.1, delayMs: 2, jitterMs: 3 } });
  const { a, b } = await twoStacks(clock, lan);
  const got: number[] = [];
  const server = createDgram(b.udp).createSocket({ type: 'udp4' });
  server.on('message', (msg: Buffer) => got.push(msg.readUInt32BE(0)));
  server.bind(9000);
  const client = createDgram(a.udp).createSocket({ type: 'udp4' });
  for (let i = 0; i < 500; i++) {
    const msg = Buffer.alloc(4);
    msg.writeUInt32BE(i);
    client.send(msg, 9000, '192.0.2.11');
    clock.advance(1);
  }
  clock.runUntilIdle();
  return { got, stats: lan.impairmentStats('vnic11')!.toPort };
}

describe('stacks over an impaired LAN, on a virtual clock', () => {
  it('the same seed gives the same losses, duplicates and order — every run', async () => {
    const first = await sendAndCount(2026);
    const second = await sendAndCount(2026);
    expect(second.got).toEqual(first.got);
    expect(first.stats.lost).toBeGreaterThan(60);
    expect(first.got.length).toBe(500 - first.stats.lost + first.stats.duplicated);
    // Some datagram overtook its predecessor (reordering reached the socket).
    expect(first.got.some((n, i) => i > 0 && n < first.got[i - 1]!)).toBe(true);
    expect((await sendAndCount(2027)).got).not.toEqual(first.got);
  });

  it('corrupted frames are dropped by checksums, and counted, never delivered damaged', async () => {
    const clock = new VirtualClock();
    const lan = new VirtualLan(clock);
    // Bits flip past the Ethernet and IP headers' first bytes: in the IP header, UDP header or data.
    const { a, b } = await twoStacks(clock, lan, (nic) => new ImpairedNic(nic, { clock, seed: 9, transmit: { corrupt: 0.5, corruptFromOffset: 14 } }));
    const payloads: string[] = [];
    const server = createDgram(b.udp).createSocket({ type: 'udp4' });
    server.on('message', (msg: Buffer) => payloads.push(msg.toString()));
    server.bind(9000);
    const client = createDgram(a.udp).createSocket({ type: 'udp4' });
    for (let i = 0; i < 400; i++) client.send(`datagram ${String(i).padStart(4, '0')}`, 9000, '192.0.2.11');
    clock.runUntilIdle();
    const counters = b.counters();
    const checksumDrops = (counters.ipv4.dropped['bad-checksum'] ?? 0) + (counters.udp.dropped['bad-checksum'] ?? 0);
    const allDrops = Object.values(counters).reduce((n, layer) => n + Object.values(layer.dropped).reduce((x, y) => x + y, 0), 0);
    // Every datagram is accounted for: delivered intact, or dropped with a reason.
    expect(payloads.length + allDrops).toBe(400);
    expect(checksumDrops).toBeGreaterThan(150);
    for (const p of payloads) expect(p).toMatch(/^datagram \d{4}$/);
  });
});
