import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { RttEstimator, timestampClock, timestampRtt } from '../../src/tcp/rtt.js';

/** No floor worth the name, so the RFC 6298 §2 arithmetic shows through. */
const OPEN = { initialRto: 1000, minRto: 0, maxRto: 60_000 };

describe('the RTT estimator (RFC 6298)', () => {
  it('§2.1: until a round trip is measured, the RTO is the initial one and SRTT is unknown', () => {
    const rtt = new RttEstimator(OPEN);
    expect(rtt.rto).toBe(1000);
    expect(rtt.srtt).toBeUndefined();
  });

  it('§2.2: the first measurement R sets SRTT = R, RTTVAR = R/2, RTO = SRTT + 4·RTTVAR', () => {
    const rtt = new RttEstimator(OPEN);
    expect(rtt.sample(100)).toBe(true);
    expect([rtt.srtt, rtt.rttvar, rtt.rto]).toEqual([100, 50, 300]);
  });

  it('§2.2: RTO = SRTT + max(G, K·RTTVAR), so a zero round trip still gives the clock granularity (1 ms)', () => {
    const rtt = new RttEstimator(OPEN);
    rtt.sample(0);
    expect(rtt.rto).toBe(1);
  });

  it('§2.3: a later R′ updates RTTVAR from the old SRTT (β = 1/4), then SRTT (α = 1/8)', () => {
    const rtt = new RttEstimator(OPEN);
    rtt.sample(100);
    rtt.sample(200);
    // RTTVAR = 3/4·50 + 1/4·|100 − 200| = 62.5; SRTT = 7/8·100 + 1/8·200 = 112.5.
    expect([rtt.srtt, rtt.rttvar, rtt.rto]).toEqual([112.5, 62.5, 112.5 + 4 * 62.5]);
  });

  it('§2.4: a computed RTO below the floor is raised to it', () => {
    const rtt = new RttEstimator({ ...OPEN, minRto: 1000 });
    rtt.sample(10);
    expect(rtt.srtt).toBe(10);
    expect(rtt.rto).toBe(1000);
  });

  it('§2.5: a computed RTO above the ceiling is held to it', () => {
    const rtt = new RttEstimator(OPEN);
    rtt.sample(50_000);
    expect(rtt.rto).toBe(60_000);
  });

  it('a negative measurement is no measurement: nothing changes', () => {
    const rtt = new RttEstimator(OPEN);
    rtt.sample(100);
    expect(rtt.sample(-1)).toBe(false);
    expect(rtt.sample(Number.NaN)).toBe(false);
    expect([rtt.srtt, rtt.rttvar, rtt.rto]).toEqual([100, 50, 300]);
  });

  it('§5.5: each expiry doubles the RTO ("back off the timer"), up to the ceiling', () => {
    const rtt = new RttEstimator({ initialRto: 1000, minRto: 200, maxRto: 5000 });
    const seen = [];
    for (let i = 0; i < 4; i++) {
      rtt.backoff();
      seen.push(rtt.rto);
    }
    expect(seen).toEqual([2000, 4000, 5000, 5000]);
  });

  it('§5.7: after the SYN was retransmitted, an RTO under 3 s becomes 3 s when data starts; a larger one stays', () => {
    const short = new RttEstimator(OPEN);
    short.sample(100);
    short.afterSynRetransmitted();
    expect(short.rto).toBe(3000);
    const long = new RttEstimator({ ...OPEN, initialRto: 8000 });
    long.afterSynRetransmitted();
    expect(long.rto).toBe(8000);
  });

  it('§3: the timed segment gives its round trip to the first ACK that covers it, once', () => {
    const rtt = new RttEstimator(OPEN);
    rtt.time(5000, 10);
    expect(rtt.timing).toBe(true);
    expect(rtt.timedRoundTrip(5000, 40)).toBeUndefined(); // acknowledges up to, not past, its first byte
    expect(rtt.timedRoundTrip(5100, 70)).toBe(60);
    expect(rtt.timing).toBe(false);
    expect(rtt.timedRoundTrip(5200, 90)).toBeUndefined();
  });

  it('§3 (Karn): once anything is retransmitted the timed segment is forgotten and its ACK measures nothing', () => {
    const rtt = new RttEstimator(OPEN);
    rtt.time(5000, 10);
    rtt.forgetTimed();
    expect(rtt.timedRoundTrip(6000, 70)).toBeUndefined();
  });

  it('times a segment across sequence-number wraparound', () => {
    const rtt = new RttEstimator(OPEN);
    rtt.time(0xffff_fff0, 0);
    expect(rtt.timedRoundTrip(0x10, 25)).toBe(25);
  });

  it('keeps the RTO within [minRto, maxRto] whatever the measurements', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0, max: 200_000, noNaN: true }), { minLength: 1, maxLength: 50 }), (samples) => {
        const rtt = new RttEstimator({ initialRto: 1000, minRto: 300, maxRto: 60_000 });
        for (const r of samples) rtt.sample(r);
        return rtt.rto >= 300 && rtt.rto <= 60_000;
      }),
    );
  });
});

describe('the timestamp clock (RFC 7323)', () => {
  it('§5.4: ticks once a millisecond from the connection’s offset, modulo 2^32', () => {
    expect(timestampClock(1234.9, 1000)).toBe(2234);
    expect(timestampClock(10, 0xffff_fffb)).toBe(5);
  });

  it('§4.1: an echoed TSval measures the round trip, across the wrap of the clock too', () => {
    expect(timestampRtt(2234, 2200)).toBe(34);
    expect(timestampRtt(5, 0xffff_fffb)).toBe(10);
  });
});
