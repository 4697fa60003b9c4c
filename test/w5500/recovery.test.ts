import { beforeEach, describe, expect, it } from 'vitest';
import { BRIDGE_LINK, MAC_A, MAC_PEER, bench, type Bench } from './harness.js';
import { checkedAfterEach } from '../support/virtual-bench.js';
import type { LinkModel } from '../../hal/mock/mock-hal.js';
import { makeFrame } from '../enc28j60/spi-helpers.js';
import { sameBytes } from './spi-probe.js';

const checked = checkedAfterEach<Bench>();

let linkModel: LinkModel | undefined;

async function started(driverOptions = {}) {
  const b = bench();
  checked(b);
  const a = b.station(MAC_A, 'a', { driverOptions, ...(linkModel ? { linkModel } : {}) });
  const peer = b.peer();
  await b.settle(a.board.nic.start());
  return { b, a, peer, nic: a.board.nic, chip: a.board.emulator, hal: a.board.hal };
}

/** After a disturbance, frames must flow again both ways, intact. */
async function expectTraffic(ctx: Awaited<ReturnType<typeof started>>, count = 10) {
  const { b, a, peer, nic } = ctx;
  const rxBefore = a.received.length;
  const txBefore = peer.received.length;
  for (let i = 0; i < count; i++) {
    peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, 200, 50_000 + i));
    expect(nic.transmit(makeFrame(MAC_PEER, MAC_A, 200, 60_000 + i))).toBe(true);
    await b.run(3);
  }
  await b.until(() => a.received.length === rxBefore + count && peer.received.length === txBefore + count, 1_000);
  expect(sameBytes(a.received.at(-1)!.subarray(0, 200), makeFrame(MAC_A, MAC_PEER, 200, 50_000 + count - 1))).toBe(true);
  expect(sameBytes(peer.received.at(-1)!.subarray(0, 200), makeFrame(MAC_PEER, MAC_A, 200, 60_000 + count - 1))).toBe(true);
  expect(nic.lastInternalError).toBeUndefined();
}

// Every disturbance twice: SPI batches running at once, and over the serial bridge's speed and
// latency (batches in flight when it strikes).
describe.each([
  { name: 'instant SPI', model: undefined },
  { name: 'bridge 1 Mbaud, 1 ms turnaround', model: BRIDGE_LINK },
])('W5500 driver: recovery without restart ($name)', ({ model }) => {
  beforeEach(() => {
    linkModel = model;
  });

  it.each([
    { value: 0, what: '0' },
    { value: 1, what: '1' },
    { value: 65534, what: '65534 (esp-idf#6572)' },
    { value: 1200, what: 'more than was received' },
  ])('given a corrupt length header of $what, it drops it (counted), flushes, and the next frames arrive', async ({ value }) => {
    const ctx = await started();
    const { b, a, peer, nic, chip, hal } = ctx;
    hal.dropInterruptEdges = true; // both frames wait in the buffer until the poll: one read takes them
    chip.injectFault({ kind: 'corrupt-header', value });
    peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, 100, 1));
    peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, 100, 2));
    await b.until(() => nic.stats().drops['rx-bad-header'] === 1, 300);
    hal.dropInterruptEdges = false;
    expect(a.received).toHaveLength(0); // never a frame made of a wrong length
    expect(nic.events['rx-flush']).toBe(1);
    expect(nic.events['socket-reopen']).toBeUndefined(); // the flush was enough
    expect(chip.peekSocket(0, 'Sn_RX_RSR')).toBe(0);
    await expectTraffic(ctx);
  });

  it('given a length header of 1602 with that much received (a frame over 1514 bytes would say so), it is a bad header by the MTU rule (2 < len ≤ 1516), not a 1600-byte read: dropped, flushed, and the next frames arrive', async () => {
    const ctx = await started();
    const { b, a, peer, nic, chip, hal } = ctx;
    hal.dropInterruptEdges = true;
    chip.injectFault({ kind: 'corrupt-header', value: 1602 });
    for (let i = 0; i < 3; i++) peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, 1000, i));
    expect(chip.peekSocket(0, 'Sn_RX_RSR')).toBe(3 * 1002);
    await b.until(() => nic.stats().drops['rx-bad-header'] === 1, 300);
    hal.dropInterruptEdges = false;
    expect(a.received).toHaveLength(0);
    expect(nic.events['rx-flush']).toBe(1);
    expect(nic.events['socket-reopen']).toBeUndefined();
    await expectTraffic(ctx);
  });

  it('given frames of 1600 and 9000 bytes from the LAN, the chip drops them at the MAC (MACRAW MTU 1514): the frames around them arrive, no flush or reopen', async () => {
    const ctx = await started();
    const { b, a, nic, chip } = ctx;
    const frames = [makeFrame(MAC_A, MAC_PEER, 200, 1), makeFrame(MAC_A, MAC_PEER, 1600, 2), makeFrame(MAC_A, MAC_PEER, 9000, 3), makeFrame(MAC_A, MAC_PEER, 200, 4)];
    const port = b.lan.plug({ label: 'jumbo', deliver: () => undefined });
    for (const frame of frames) port.send(frame);
    await b.until(() => a.received.length === 2, 500);
    expect(sameBytes(a.received[0]!.subarray(0, 200), frames[0]!)).toBe(true);
    expect(sameBytes(a.received[1]!.subarray(0, 200), frames[3]!)).toBe(true);
    expect(chip.stats.rxDroppedTooLong).toBe(2);
    expect(nic.stats().drops).toEqual({});
    expect(nic.events['rx-flush']).toBeUndefined();
    expect(nic.events['rx-reopen']).toBeUndefined();
    await expectTraffic(ctx);
  });

  it('given every header corrupt (a flush does not help), it closes and opens socket 0 again', async () => {
    const ctx = await started();
    const { b, a, peer, nic, chip } = ctx;
    chip.injectFault({ kind: 'corrupt-header', value: 3, sticky: true });
    for (let i = 0; i < 3; i++) {
      peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, 100, i));
      await b.run(5);
    }
    await b.until(() => (nic.events['rx-reopen'] ?? 0) === 1 && chip.peekSocket(0, 'Sn_SR') === 0x42, 300);
    expect(nic.stats().drops['rx-bad-header']).toBeGreaterThanOrEqual(2);
    // Only frames after the reopen (which ends the fault) reach the stack, intact.
    for (const frame of a.received) expect(sameBytes(frame.subarray(0, 100), makeFrame(MAC_A, MAC_PEER, 100, frame[14]!))).toBe(true);
    await expectTraffic(ctx);
  });

  it('given torn reads of the receive pointers (a frame stored between the two bytes), it reads again until two agree', async () => {
    const ctx = await started();
    const { b, a, peer, nic, chip } = ctx;
    for (let i = 0; i < 4; i++) {
      peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, 60, i));
      await b.run(5);
    }
    await b.until(() => a.received.length === 4, 100);
    for (let round = 0; round < 3; round++) {
      chip.injectFault({ kind: 'tear', register: 'Sn_RX_WR' });
      peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, 300, 10 + round)); // held until the read
      await b.run(120); // the next poll reads the pointers
    }
    await b.until(() => a.received.length === 7, 200);
    expect(nic.events['rx-pointer-reread']).toBeGreaterThanOrEqual(1);
    expect(a.received.slice(4).map((f) => f[14])).toEqual([10, 11, 12]);
    expect(nic.stats().drops).toEqual({});
    await expectTraffic(ctx);
  });

  it('given torn reads of Sn_TX_RD, it never counts a frame sent early and settles every one', async () => {
    const ctx = await started();
    const { b, peer, nic, chip } = ctx;
    for (let i = 0; i < 6; i++) {
      chip.injectFault({ kind: 'tear', register: 'Sn_TX_RD' });
      nic.transmit(makeFrame(MAC_PEER, MAC_A, 400, i));
      await b.run(20);
    }
    await b.until(() => peer.received.length === 6 && nic.stats().txFrames === 6, 300);
    await expectTraffic(ctx);
  });

  it('given missed interrupt edges (INTn stays high), the poll safety net still receives everything', async () => {
    const ctx = await started({ pollIntervalMs: 10 });
    const { b, a, peer, chip } = ctx;
    for (let i = 0; i < 20; i++) {
      chip.injectFault({ kind: 'missed-edge' });
      peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, 300, i));
      await b.run(3);
    }
    await b.until(() => a.received.length === 20, 100);
    expect(a.received.map((f) => f[14])).toEqual([...Array(20).keys()]);
  });

  it('given the link drops while a frame is on the wire, it reports the link down, and after it comes back frees the stuck transmitter (socket opened again) and sends', async () => {
    const ctx = await started();
    const { b, a, nic, chip } = ctx;
    chip.injectFault({ kind: 'link-drop-mid-tx', downMs: 40 });
    nic.transmit(makeFrame(MAC_PEER, MAC_A, 1500, 1));
    await b.until(() => chip.transmitterStuck(), 50, 0.1);
    await b.until(() => !nic.linkUp, 200);
    expect(nic.transmit(makeFrame(MAC_PEER, MAC_A, 60))).toBe(false);
    await b.until(() => nic.linkUp && !chip.transmitterStuck(), 500);
    expect(a.links).toEqual([true, false, true]);
    // The frame the link took is sent again once socket 0 is open again.
    await b.until(() => ctx.peer.received.length === 1, 200);
    expect(sameBytes(ctx.peer.received[0]!.subarray(0, 1500), makeFrame(MAC_PEER, MAC_A, 1500, 1))).toBe(true);
    expect(nic.events['socket-reopen']).toBe(1);
    await expectTraffic(ctx);
  });

  it('given the link going down and up (flaps), it reports both, refuses to transmit while down, then carries on', async () => {
    const ctx = await started();
    const { b, a, nic, chip } = ctx;
    chip.setLinkUp(false);
    await b.until(() => !nic.linkUp, 200);
    expect(a.links).toEqual([true, false]);
    expect(nic.transmit(makeFrame(MAC_PEER, MAC_A, 60))).toBe(false);
    expect(nic.stats().drops['link-down']).toBe(1);
    chip.setLinkUp(true);
    await b.until(() => nic.linkUp, 200);
    expect(a.links).toEqual([true, false, true]);
    for (let flap = 0; flap < 5; flap++) {
      chip.setLinkUp(false);
      await b.run(1);
      chip.setLinkUp(true);
      await b.run(1);
    }
    await b.until(() => nic.linkUp && a.links.at(-1) === true, 300);
    await expectTraffic(ctx);
  });

  it('given a command the chip never accepts (Sn_CR stuck), it notices and resets the chip', async () => {
    const ctx = await started();
    const { b, peer, nic, chip } = ctx;
    chip.injectFault({ kind: 'stuck-command' });
    peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, 100, 1)); // its RECV never completes
    await b.until(() => (nic.events['stuck-command'] ?? 0) === 1 && chip.peekSocket(0, 'Sn_SR') === 0x42 && chip.peekSocket(0, 'Sn_CR') === 0, 500);
    expect(nic.events['reinit']).toBe(1);
    await expectTraffic(ctx);
  });

  it.each(['zeros', 'ones'] as const)('given a chip that stops answering (MISO all %s), it keeps trying with backoff and recovers when it answers again', async (miso) => {
    const ctx = await started();
    const { b, a, nic, chip } = ctx;
    chip.setMiso(miso);
    await b.until(() => (nic.events['error-ENODEV'] ?? 0) >= 2, 1_000);
    expect(nic.linkUp).toBe(false);
    expect(a.links.at(-1)).toBe(false);
    chip.setMiso('normal');
    await b.until(() => nic.linkUp, 3_000);
    await expectTraffic(ctx);
  });

  it('given the chip is reset underneath (a glitch on RSTn), it notices (Sn_SR) and re-initialises', async () => {
    const ctx = await started();
    const { b, nic, chip } = ctx;
    await b.run(5);
    chip.powerCycle();
    await b.until(() => (nic.events['chip-reset'] ?? 0) + (nic.events['chip-silent'] ?? 0) >= 1 && chip.peekSocket(0, 'Sn_SR') === 0x42, 500);
    expect(chip.macAddress).toEqual(MAC_A);
    await expectTraffic(ctx);
  });

  it('given a reset underneath in the middle of two-way traffic, it recovers (frames in flight may be lost)', async () => {
    const ctx = await started({ pollIntervalMs: 20 });
    const { b, a, peer, nic, chip } = ctx;
    const paceMs = linkModel ? 12 : 0.5;
    for (let i = 0; i < 40; i++) {
      peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, 400, i));
      nic.transmit(makeFrame(MAC_PEER, MAC_A, 400, 1000 + i));
      if (i === 20) chip.powerCycle();
      await b.run(paceMs, 0.25);
    }
    await b.run(100);
    expect((nic.events['chip-reset'] ?? 0) + (nic.events['chip-silent'] ?? 0)).toBeGreaterThanOrEqual(1);
    expect(a.received.length).toBeGreaterThan(10);
    expect(peer.received.length).toBeGreaterThan(10);
    await expectTraffic(ctx);
  });

  it('given a HAL timeout mid-traffic, it re-initialises and carries on', async () => {
    const ctx = await started();
    const { b, nic, hal } = ctx;
    hal.injectFault('ETIMEDOUT', { executed: true });
    nic.transmit(makeFrame(MAC_PEER, MAC_A, 100));
    await b.run(50);
    await expectTraffic(ctx);
    expect(nic.events['error-ETIMEDOUT']).toBe(1);
  });

  it('given the serial link is lost and restored, it reports the link down, pauses, then re-initialises and reports it up', async () => {
    const ctx = await started();
    const { b, a, nic, hal } = ctx;
    hal.loseLink('cable pulled');
    expect(nic.linkUp).toBe(false);
    expect(nic.transmit(makeFrame(MAC_PEER, MAC_A, 60))).toBe(false);
    await b.run(300);
    hal.restoreLink(true);
    await b.until(() => nic.linkUp, 200);
    expect(nic.events['hal-link-restored']).toBe(1);
    expect(a.links).toEqual([true, false, true]);
    await expectTraffic(ctx);
  });
});
