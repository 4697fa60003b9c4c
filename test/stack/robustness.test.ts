import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { EtherType } from '../../src/wire/ethernet.js';
import { arpFrame, echoRequest, ipv4Frame, lanOf, macOf, scripted, udpDatagram } from './helpers.js';
import { MAC_ZERO } from '../../src/wire/address.js';
import { createDgram } from '../../src/socket/dgram.js';

const PEER = macOf(0x22);

/** Valid frames of every kind the stack understands, for mutation. */
function seeds(): Uint8Array[] {
  return [
    arpFrame(1, PEER, '10.0.0.2', MAC_ZERO, '10.0.0.1'),
    arpFrame(2, PEER, '10.0.0.2', macOf(1), '10.0.0.1'),
    ipv4Frame(PEER, macOf(1), { source: '10.0.0.2', destination: '10.0.0.1', protocol: 1 }, echoRequest(1, 1, new Uint8Array(16))),
    ipv4Frame(PEER, macOf(1), { source: '10.0.0.2', destination: '10.0.0.1', protocol: 17 }, udpDatagram('10.0.0.2', '10.0.0.1', 1, 5000, new Uint8Array(8))),
    ipv4Frame(PEER, macOf(1), { source: '10.0.0.2', destination: '10.0.0.1', protocol: 17, moreFragments: true }, new Uint8Array(64)),
    ipv4Frame(PEER, macOf(1), { source: '10.0.0.2', destination: '10.0.0.1', protocol: 17, fragmentOffset: 64 }, new Uint8Array(20)),
  ];
}

function totalReceivedAndDropped(c: ReturnType<Awaited<ReturnType<typeof scripted>>['stack']['counters']>) {
  return Object.values(c.ethernet.dropped).reduce((a, b) => a + b, 0);
}

describe('Malformed input', () => {
  it('random bytes into the stack never throw, are counted, and the stack keeps answering ping', async () => {
    const { nic, stack, clock } = await scripted({ verifyChecksums: true });
    stack.arp.addStatic(1, '10.0.0.2', PEER);
    const socket = createDgram(stack.udp).createSocket();
    socket.bind(5000);
    let injected = 0;
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1514 }), fc.boolean(), (bytes, addressed) => {
        const frame = bytes.slice();
        if (addressed && frame.length >= 14) {
          frame.set(macOf(1), 0);
          frame[12] = frame[0]! & 1 ? EtherType.ARP >> 8 : EtherType.IPV4 >> 8;
          frame[13] = frame[0]! & 1 ? EtherType.ARP & 0xff : EtherType.IPV4 & 0xff;
        }
        nic.inject(frame);
        injected++;
        clock.advance(1);
      }),
      { numRuns: 3000 },
    );
    const c = stack.counters();
    expect(c.ethernet.received).toBe(injected);
    expect(totalReceivedAndDropped(c)).toBeGreaterThan(0);
    nic.take();
    nic.inject(ipv4Frame(PEER, macOf(1), { source: '10.0.0.2', destination: '10.0.0.1', protocol: 1 }, echoRequest(9, 9, new Uint8Array(8))));
    expect(nic.take()).toHaveLength(1);
  });

  it('mutated valid frames (bit flips, truncation) never throw; with checksums off they reach the upper layers', async () => {
    for (const verifyChecksums of [true, false]) {
      const { nic, stack, clock } = await scripted({ verifyChecksums });
      stack.arp.addStatic(1, '10.0.0.2', PEER);
      createDgram(stack.udp).createSocket().bind(5000);
      const base = seeds();
      fc.assert(
        fc.property(
          fc.nat(base.length - 1),
          fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
          fc.nat(),
          (which, flips, cut) => {
            const frame = base[which]!.slice();
            for (const [at, value] of flips) frame[14 + (at % Math.max(1, frame.length - 14))] = value;
            nic.inject(cut % 4 === 0 ? frame.subarray(0, cut % frame.length) : frame);
            clock.advance(1);
          },
        ),
        { numRuns: 3000 },
      );
      clock.advance(60_000);
      const c = stack.counters();
      expect(c.ethernet.received).toBe(3000);
      expect(stack.reassemblyBytesHeld).toBe(0);
      if (!verifyChecksums) expect(c.udp.received + c.icmp.received).toBeGreaterThan(0);
    }
  });

  it('a LAN of three stacks keeps working while one host sprays garbage', async () => {
    const { hosts, lan } = await lanOf(3);
    const port = lan.plug({ label: 'noise', deliver: () => undefined });
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 14, maxLength: 600 }), (bytes) => {
        bytes[0] = 0xff; // broadcast so every stack sees it
        port.send(bytes);
      }),
      { numRuns: 1000 },
    );
    await expect(hosts[0]!.stack.ping(hosts[2]!.address)).resolves.toMatchObject({ from: '10.0.0.3' });
  });
});
