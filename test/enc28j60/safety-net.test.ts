import { describe, expect, it } from 'vitest';
import { BRIDGE_LINK, MAC_A, MAC_PEER, bench, type Bench } from './harness.js';
import { checkedAfterEach } from '../support/virtual-bench.js';
import { makeFrame } from './spi-helpers.js';
import { createMockEnc28j60Board } from '../../tools/boards.js';

const checked = checkedAfterEach<Bench>();

async function started(interruptWired = true) {
  const b = bench();
  checked(b);
  const board = createMockEnc28j60Board({
    clock: b.clock,
    lan: b.lan,
    mac: MAC_A,
    interruptWired,
    linkModel: BRIDGE_LINK,
    driverOptions: { rxProgram: true, pollIntervalMs: 100, idlePollIntervalMs: 1_000 },
    strict: true,
    onStrictViolation: (m) => b.violations.push(m),
  });
  const received: Uint8Array[] = [];
  board.nic.attach({ receive: (f) => received.push(Uint8Array.from(f)), linkChange: () => {} });
  const peer = b.peer();
  await b.settle(board.nic.start());
  /** Polls (each one runArmed request) during the next `ms` of virtual time. */
  const pollsIn = async (ms: number) => {
    const before = board.hal.log.snapshot();
    await b.run(ms, 5);
    return board.hal.log.since(before).programCommands;
  };
  return { b, board, received, peer, pollsIn };
}

// The safety-net poll (src/drivers/safety-net.ts) with the receive program armed: every 100 ms
// while frames move or the INT line has not proved itself, backing off to 1 s on an idle link.
describe('ENC28J60 driver: the safety-net poll on an idle link', () => {
  it('backs off to once a second once INT has delivered a frame, and keeps polling', async () => {
    const { b, received, peer, pollsIn } = await started();
    peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, 100, 1));
    await b.until(() => received.length === 1, 50);
    await b.run(2_000); // 100, 200, 400, 800 ms: the period reaches 1 s
    const polls = await pollsIn(10_000);
    expect(polls).toBeGreaterThanOrEqual(9);
    expect(polls).toBeLessThanOrEqual(11);
  });

  it('stays at 100 ms while the INT line has delivered nothing (it may not be wired)', async () => {
    const { pollsIn } = await started(false);
    expect(await pollsIn(2_000)).toBeGreaterThanOrEqual(19);
  });

  it('polls every 100 ms again as soon as a frame is sent', async () => {
    const { b, board, received, peer, pollsIn } = await started();
    peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, 100, 1));
    await b.until(() => received.length === 1, 50);
    await b.run(3_000);
    expect(board.nic.transmit(makeFrame(MAC_PEER, MAC_A, 100, 2))).toBe(true);
    // The next poll within 100 ms of the frame, not up to a second later.
    expect(await pollsIn(105)).toBeGreaterThanOrEqual(1);
  });

  it('given an edge missed on the idle link, the backed-off poll finds the frame, and polls every 100 ms while more come', async () => {
    const { b, board, received, peer } = await started();
    peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, 100, 1));
    await b.until(() => received.length === 1, 50);
    await b.run(3_000);
    board.hal.dropInterruptEdges = true;
    peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, 100, 2));
    await b.until(() => received.length === 2, 1_100);
    // The rest arrive after the poll that found the first: each within a 100 ms period.
    for (let i = 0; i < 5; i++) {
      peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, 100, 3 + i));
      await b.until(() => received.length === 3 + i, 150);
    }
  });
});
