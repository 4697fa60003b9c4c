import { afterEach, expect } from 'vitest';
import { VirtualLan, VirtualNic } from '../../hal/lan/switch.js';
import { VirtualClock } from '../../src/time/virtual-clock.js';

export const MAC_PEER = Uint8Array.of(0x02, 0x5e, 0x00, 0x00, 0x00, 0x99);

/** A virtual LAN on a virtual clock, with the helpers every driver test drives it by. */
export interface VirtualBench {
  clock: VirtualClock;
  lan: VirtualLan;
  /** Strict-mode reports of every emulated chip on the LAN. */
  violations: string[];
  peer(mac?: Uint8Array): { nic: VirtualNic; received: Uint8Array[] };
  /** Advance virtual time until `promise` settles (or fail after `limitMs`). */
  settle<T>(promise: Promise<T>, limitMs?: number): Promise<T>;
  run(ms: number, stepMs?: number): Promise<void>;
  /** Advance until `predicate` holds (or fail after `limitMs`). */
  until(predicate: () => boolean, limitMs?: number, stepMs?: number): Promise<void>;
  /** Strict mode: any driver misuse the chip would punish fails the test. */
  expectNoViolations(): void;
}

export function virtualBench(): VirtualBench {
  const clock = new VirtualClock();
  const lan = new VirtualLan(clock);
  const violations: string[] = [];
  return {
    clock,
    lan,
    violations,
    peer(mac = MAC_PEER) {
      const nic = new VirtualNic(lan, mac);
      const received: Uint8Array[] = [];
      nic.attach({ receive: (frame) => received.push(Uint8Array.from(frame)), linkChange: () => {} });
      void nic.start();
      return { nic, received };
    },
    async settle(promise, limitMs = 5_000) {
      let done = false;
      let failed = false;
      let value: unknown;
      promise.then(
        (v) => {
          done = true;
          value = v;
        },
        (e: unknown) => {
          failed = true;
          value = e;
        },
      );
      const end = clock.now() + limitMs;
      while (!done && !failed && clock.now() < end) await clock.advanceAsync(0.5);
      if (failed) throw value;
      if (!done) throw new Error(`did not settle within ${limitMs} ms of virtual time`);
      return value as Awaited<typeof promise>;
    },
    async run(ms, stepMs = 0.5) {
      const end = clock.now() + ms;
      while (clock.now() < end) await clock.advanceAsync(Math.min(stepMs, end - clock.now()));
    },
    async until(predicate, limitMs = 5_000, stepMs = 0.5) {
      const end = clock.now() + limitMs;
      while (!predicate()) {
        if (clock.now() >= end) throw new Error(`condition not met within ${limitMs} ms of virtual time`);
        await clock.advanceAsync(stepMs);
      }
    },
    expectNoViolations() {
      expect(violations).toEqual([]);
    },
  };
}

/**
 * For a test file: after each test, the bench it last passed to the returned function must have
 * no strict-mode reports (a report from an emulator fails the test that caused it).
 */
export function checkedAfterEach<B extends Pick<VirtualBench, 'expectNoViolations'>>(): (bench: B) => B {
  let current: B | undefined;
  afterEach(() => {
    const b = current;
    current = undefined;
    b?.expectNoViolations();
  });
  return (bench) => (current = bench);
}
