import { describe, expect, it } from 'vitest';
import { bench as enc28j60Bench, MAC_A } from '../enc28j60/harness.js';
import { bench as w5500Bench } from '../w5500/harness.js';

/**
 * The chip's state as the console shows it (src/drivers/status.ts): what each driver knows of its
 * chip, from the answers to its own batches — the same fields for both chips, with what a chip
 * does not count said so (undefined), not invented.
 */
const CHIPS = [
  {
    chip: 'ENC28J60',
    open: () => { const b = enc28j60Bench(); return { b, station: b.station(MAC_A, 'enc28j60') }; },
    // The ring: ERXST 0 to the default ERXND 0x13FF.
    expected: { speedMbps: 10, revision: 'B7', ringBytes: 0x1400, packetsWaiting: 0, overflows: 0 },
  },
  {
    chip: 'W5500',
    open: () => { const b = w5500Bench(); return { b, station: b.station(MAC_A, 'w5500') }; },
    expected: { speedMbps: 100, revision: 'VERSIONR 0x04', ringBytes: 16 * 1024, packetsWaiting: undefined, overflows: undefined },
  },
];

describe.each(CHIPS)('$chip status()', ({ chip, open, expected }) => {
  it('reports the chip, its link, its receive buffer and what the driver holds for it', async () => {
    const { b, station } = open();
    const nic = station.board.nic;
    expect(nic.status()).toMatchObject({ chip, linkUp: false, revision: undefined, transmitQueue: 0 });
    await b.settle(nic.start());
    await b.until(() => nic.linkUp, 5_000);
    expect(nic.status()).toEqual({ chip, linkUp: true, promiscuous: false, ringUsed: 0, transmitQueue: 0, transmitErrors: 0, ...expected });

    // Handed to the driver, a frame is held until the chip has sent it.
    const peer = b.peer();
    // To the peer, EtherType 0x88b5 (IEEE 802 local experimental), 100 bytes of payload.
    const frame = new Uint8Array(114);
    frame.set(peer.nic.mac, 0);
    frame.set(MAC_A, 6);
    frame.set([0x88, 0xb5], 12);
    for (let i = 0; i < 3; i++) expect(nic.transmit(frame.slice())).toBe(true);
    expect(nic.status().transmitQueue).toBe(3);
    await b.until(() => peer.received.length === 3, 1_000);
    await b.until(() => nic.status().transmitQueue === 0, 1_000);
    expect(nic.stats().txFrames).toBe(3);
    b.expectNoViolations();
  });
});
