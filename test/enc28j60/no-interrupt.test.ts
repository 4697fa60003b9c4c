import { describe, expect, it } from 'vitest';
import { BRIDGE_LINK, MAC_A, MAC_PEER, bench, type Bench } from './harness.js';
import { checkedAfterEach } from '../support/virtual-bench.js';
import { makeFrame } from './spi-helpers.js';
import { createMockEnc28j60Board } from '../../tools/boards.js';

const checked = checkedAfterEach<Bench>();

// A module whose INT pin is not wired: the board never sees an edge, so the driver's poll
// (pollIntervalMs, short here) is what finds received frames — with the receive program, the poll
// runs it (runArmed); with batches, the poll is an interrupt service.
describe.each([
  { name: 'receive program, instant SPI', rxProgram: true, model: undefined },
  { name: 'receive batches, bridge 1 Mbaud', rxProgram: false, model: BRIDGE_LINK },
])('ENC28J60 driver without an interrupt line ($name)', ({ rxProgram, model }) => {
  it('receives and sends everything by polling every 10 ms', async () => {
    const b = bench();
    checked(b);
    const board = createMockEnc28j60Board({
      clock: b.clock,
      lan: b.lan,
      mac: MAC_A,
      interruptWired: false,
      ...(model ? { linkModel: model } : {}),
      driverOptions: { rxProgram, pollIntervalMs: 10 },
      onStrictViolation: (m) => b.violations.push(m),
    });
    const received: Uint8Array[] = [];
    board.nic.attach({ receive: (f) => received.push(Uint8Array.from(f)), linkChange: () => {} });
    const peer = b.peer();
    await b.settle(board.nic.start());
    expect(board.hal.interrupt.asserted).toBe(false);
    for (let i = 0; i < 20; i++) {
      peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, 300, i));
      expect(board.nic.transmit(makeFrame(MAC_PEER, MAC_A, 300, 100 + i))).toBe(true);
      await b.run(5);
    }
    await b.until(() => received.length === 20 && peer.received.length === 20, 200);
    expect(received.map((f) => f[14])).toEqual([...Array(20).keys()]);
    expect(board.hal.interrupt.asserted).toBe(false); // never saw the pin
  });
});
