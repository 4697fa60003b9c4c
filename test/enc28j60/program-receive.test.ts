import { describe, expect, it } from 'vitest';
import { createMockEnc28j60Board } from '../../tools/boards.js';
import { BRIDGE_LINK, MAC_A, MAC_PEER, bench, type Bench } from './harness.js';
import { checkedAfterEach } from '../support/virtual-bench.js';
import { makeFrame } from './spi-helpers.js';

/**
 * Receiving by the program on the board (docs/bridge-protocol.md §3.2): what the driver does when
 * a run's answer is lost, when the HAL cannot run programs, and that every batch leaves the chip
 * in bank 0, the bank the program assumes.
 */
const checked = checkedAfterEach<Bench>();

function board(b: Bench, maxProgramBytes?: number, transactionDelays?: boolean) {
  const station = createMockEnc28j60Board({
    clock: b.clock,
    lan: b.lan,
    mac: MAC_A,
    name: 'a',
    linkModel: BRIDGE_LINK,
    maxProgramBytes,
    transactionDelays,
    onStrictViolation: (message) => b.violations.push(message),
    // Full duplex on a port forced to full: the wire time bounds a frame, so sends may follow
    // before their answers (the send-ahead these tests measure).
    chip: { linkPartner: 'full-duplex' },
    driverOptions: { pollIntervalMs: 1e9, fullDuplex: true },
  });
  const received: Uint8Array[] = [];
  station.nic.attach({ receive: (frame) => received.push(Uint8Array.from(frame)), linkChange: () => {} });
  return { ...station, received };
}

/**
 * A started board whose completion checks (batches that only read EIR) are counted; `onFirst`
 * runs when the first one is sent.
 */
async function watchingChecks(onFirst?: (peer: ReturnType<Bench['peer']>) => void) {
  const b = checked(bench());
  const a = board(b);
  const peer = b.peer();
  await b.settle(a.nic.start());
  await b.run(5);
  const spi = a.hal.spi;
  const transfer = spi.transfer.bind(spi);
  let checks = 0;
  spi.transfer = (batch) => {
    const promise = transfer(batch);
    if (batch.length === 1 && batch[0]!.write?.[0] === 0x1c && batch[0]!.read === 1 && checks++ === 0) onFirst?.(peer);
    return promise;
  };
  return { b, a, peer, checks: () => checks };
}

describe('ENC28J60 driver: receive program', () => {
  it('given run answers lost on the link, it counts those frames as drops and goes on without a receiver reset', async () => {
    const b = checked(bench());
    const a = board(b);
    const peer = b.peer();
    await b.settle(a.nic.start());
    await b.run(5);
    for (let i = 0; i < 30; i++) {
      // Frames 10 and 20: their runs happen on the chip (EPKTCNT decremented), the answers vanish.
      if (i === 10 || i === 20) a.hal.loseRunAnswers(1);
      peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, 300, i));
      await b.run(40, 1);
    }
    expect(a.received.length).toBe(28);
    const expected = Array.from({ length: 30 }, (_, i) => i).filter((i) => i !== 10 && i !== 20);
    a.received.forEach((frame, k) => expect(frame).toEqual(makeFrame(MAC_A, MAC_PEER, 300, expected[k]!)));
    expect(a.nic.stats().drops['rx-run-lost']).toBe(2);
    expect(a.nic.events['rx-reset']).toBeUndefined();
    expect(a.nic.stats().drops['rx-ring-corrupt']).toBeUndefined();
    // The ring was released past the lost frames too: the chip keeps taking full-size frames.
    for (let i = 0; i < 20; i++) {
      peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, 1514, 100 + i));
      await b.run(40, 1);
    }
    expect(a.received.length).toBe(48);
    expect(a.nic.stats().drops['rx-overflow']).toBeUndefined();
  });

  it('given a HAL that runs no programs, it receives by interrupt-service batches', async () => {
    const b = checked(bench());
    const a = board(b, 0);
    const peer = b.peer();
    await b.settle(a.nic.start());
    expect(a.nic.events['rx-program-unavailable']).toBe(1);
    const before = a.hal.log.snapshot();
    for (let i = 0; i < 10; i++) {
      peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, 200, i));
      await b.run(40, 1);
    }
    expect(a.received.length).toBe(10);
    const totals = a.hal.log.since(before);
    expect(totals.runs).toBe(0);
    expect(totals.roundTrips).toBe(20); // service (header + first bytes) + the rest, as without programs
  });

  it('given a program too large for the board, it falls back to batches', async () => {
    const b = checked(bench());
    const a = board(b, 34); // the receive program is 35 bytes
    const peer = b.peer();
    await b.settle(a.nic.start());
    expect(a.nic.events['rx-program-unavailable']).toBe(1);
    peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, 200, 1));
    await b.run(40, 1);
    expect(a.received.length).toBe(1);
    expect(a.hal.log.totals.runs).toBe(0);
  });

  it('leaves the chip in bank 0 after every batch while the program is armed, both ways busy', async () => {
    const b = checked(bench());
    const a = board(b);
    const peer = b.peer();
    await b.settle(a.nic.start());
    const banks = new Set<number>();
    let wrong = 0;
    for (let i = 0; i < 40; i++) {
      peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, 400, i));
      a.nic.transmit(makeFrame(MAC_PEER, MAC_A, 400, i));
      for (let t = 0; t < 20; t++) {
        await b.run(1, 1);
        // Between batches (nothing in flight on the chip) ECON1.BSEL must be 0.
        if (a.hal.batchesInFlight === 0) {
          const bank = a.emulator.peek('ECON1') & 0x03;
          banks.add(bank);
          if (bank !== 0) wrong++;
        }
      }
    }
    await b.until(() => a.received.length === 40 && peer.received.length === 40, 2_000);
    expect(wrong).toBe(0);
    expect(banks).toEqual(new Set([0]));
  });

  it('settles a transmission from the EIR of the next run: an exchange of frames needs no completion check, a quiet period one', async () => {
    const { b, a, peer, checks } = await watchingChecks();
    // Ping-like: the board answers each frame, the peer sends the next one 2 ms after the answer.
    a.nic.attach({ receive: (frame) => a.nic.transmit(makeFrame(MAC_PEER, MAC_A, frame.length, frame[14]!)), linkChange: () => {} });
    peer.nic.attach({ receive: (frame) => peer.received.push(Uint8Array.from(frame)), linkChange: () => {} });
    for (let i = 0; i < 20; i++) {
      peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, 98, i));
      await b.until(() => peer.received.length === i + 1, 100, 0.05);
      await b.run(2, 0.05);
    }
    expect(checks()).toBe(0);
    expect(a.nic.stats().txFrames).toBe(19); // the last answer: nothing has come in since
    await b.run(12, 0.05); // txRunCheckDelayMs after its wire time
    expect(checks()).toBe(1);
    expect(a.nic.stats().txFrames).toBe(20);
    expect(a.nic.events['tx-preempted']).toBeUndefined();
  });

  it('sends a frame without waiting for a completion check whose answer sits behind a long run', async () => {
    // When the driver sends the completion check for frame 1, a full-size frame arrives: its run
    // starts before the check reaches the board and streams for ≈ 17 ms at 100 kB/s; the check's
    // answer comes after it.
    const { b, a, peer, checks } = await watchingChecks((peer) => peer.nic.transmit(makeFrame(MAC_A, MAC_PEER, 1514, 2)));
    a.nic.transmit(makeFrame(MAC_PEER, MAC_A, 60, 1));
    await b.until(() => checks() > 0, 50, 0.05);
    await b.run(1, 0.05);
    const sentAt = b.clock.now();
    a.nic.transmit(makeFrame(MAC_PEER, MAC_A, 60, 3));
    await b.until(() => peer.received.length === 2, 100, 0.05);
    expect(b.clock.now() - sentAt).toBeLessThan(5);
    expect(a.received.length).toBe(0); // the run was still streaming: the check's answer was behind it
    await b.until(() => a.received.length === 1, 100);
  });
});

describe('ENC28J60 driver: sends that follow without waiting (board-side delay before TXRST)', () => {
  async function sendSmallFrames(transactionDelays: boolean) {
    const b = checked(bench());
    const a = board(b, undefined, transactionDelays);
    const peer = b.peer();
    await b.settle(a.nic.start());
    await b.run(5);
    const before = a.hal.log.snapshot();
    const start = b.clock.now();
    for (let i = 0; i < 60; i++) expect(a.nic.transmit(makeFrame(MAC_PEER, MAC_A, 60, i))).toBe(true);
    await b.until(() => peer.received.length === 60, 2_000, 0.05);
    const elapsed = b.clock.now() - start;
    await b.run(20); // the last completion check
    peer.received.forEach((frame, i) => expect(frame.subarray(0, 60)).toEqual(makeFrame(MAC_PEER, MAC_A, 60, i)));
    expect(a.nic.events['tx-preempted']).toBeUndefined();
    expect(a.nic.stats().txFrames).toBe(60);
    return { elapsed, totals: a.hal.log.since(before) };
  }

  it('sends 60-byte frames back to back at the link rate, none cut short, in order', async () => {
    const withDelays = await sendSmallFrames(true);
    const without = await sendSmallFrames(false);
    // Without delays each small send waits for the previous one's answer (a 60-byte write cannot
    // prove the previous frame is off the wire); with them, sends follow and the link stays busy.
    expect(without.totals.maxInFlight).toBe(1);
    expect(withDelays.totals.maxInFlight).toBeGreaterThanOrEqual(2);
    expect(withDelays.elapsed).toBeLessThan(0.7 * without.elapsed);
  });
});
