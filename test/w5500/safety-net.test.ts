import { describe, expect, it } from 'vitest';
import { BRIDGE_LINK, MAC_A, MAC_PEER, bench, type Bench } from './harness.js';
import { checkedAfterEach } from '../support/virtual-bench.js';
import { makeFrame } from '../enc28j60/spi-helpers.js';

const checked = checkedAfterEach<Bench>();

async function started(interruptWired = true) {
  const b = bench();
  checked(b);
  const a = b.station(MAC_A, 'a', { linkModel: BRIDGE_LINK, interruptWired, driverOptions: { pollIntervalMs: 100, idlePollIntervalMs: 1_000, noInterruptPollMs: 10 } });
  const peer = b.peer();
  await b.settle(a.board.nic.start());
  /** Polls during the next `ms` of virtual time: with the receive program, each one runArmed request. */
  const pollsIn = async (ms: number) => {
    const before = a.board.hal.log.snapshot();
    await b.run(ms, 5);
    const since = a.board.hal.log.since(before);
    return { runRequests: since.programCommands, batches: since.batches };
  };
  return { b, a, peer, pollsIn };
}

// The safety-net poll (src/drivers/safety-net.ts) with the receive program armed.
describe('W5500 driver: the safety-net poll on an idle link', () => {
  it('backs off to once a second once INTn has delivered a frame, and keeps polling', async () => {
    const { b, a, peer, pollsIn } = await started();
    peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, 100, 1));
    await b.until(() => a.received.length === 1, 50);
    await b.run(2_000);
    const { runRequests } = await pollsIn(10_000);
    expect(runRequests).toBeGreaterThanOrEqual(9);
    expect(runRequests).toBeLessThanOrEqual(11);
  });

  it('without an interrupt line, keeps polling every 10 ms', async () => {
    const { pollsIn } = await started(false);
    expect((await pollsIn(1_000)).batches).toBeGreaterThanOrEqual(90);
  });

  it('polls every 100 ms again from the first frame sent', async () => {
    const { b, a, peer, pollsIn } = await started();
    peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, 100, 1));
    await b.until(() => a.received.length === 1, 50);
    await b.run(3_000);
    expect(a.board.nic.transmit(makeFrame(MAC_PEER, MAC_A, 100, 2))).toBe(true);
    expect((await pollsIn(105)).runRequests).toBeGreaterThanOrEqual(1);
  });
});
