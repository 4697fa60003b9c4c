import { describe, expect, it } from 'vitest';
import { cubic, newReno } from '../../src/tcp/congestion.js';

const MSS = 1000;

/** Feed a controller one RTT at a time: a window's worth of ACKs spread over `rttMs`. */
function runRtts(cc: ReturnType<typeof cubic>, start: number, rtts: number, rttMs: number): number {
  let now = start;
  for (let r = 0; r < rtts; r++) {
    const segments = Math.floor(cc.cwnd / MSS);
    for (let i = 0; i < segments; i++) cc.onAck(MSS, now + (i * rttMs) / segments, rttMs);
    now += rttMs;
  }
  return now;
}

describe('congestion controllers', () => {
  it('NewReno halves the window on loss (RFC 5681 §3.1 eq. 4); CUBIC keeps β = 0.7 of it (RFC 9438 §4.6)', () => {
    const reno = newReno(MSS, 4 * MSS);
    const c = cubic(MSS, 4 * MSS);
    for (const cc of [reno, c]) {
      cc.setCwnd(100 * MSS);
      cc.onLoss(100 * MSS, 0);
    }
    expect([reno.cwnd, reno.ssthresh]).toEqual([50 * MSS, 50 * MSS]);
    expect([c.cwnd, c.ssthresh]).toEqual([70 * MSS, 70 * MSS]);
    c.onRetransmitTimeout(70 * MSS, 0);
    // RFC 9438 §4.8: one segment, ssthresh from the window at the timeout.
    expect([c.cwnd, c.ssthresh]).toEqual([MSS, 49 * MSS]);
  });

  it('CUBIC regrows concave to W_max at t = K = ∛(W_max·(1 − β)/C), then probes beyond it (RFC 9438 §4.2)', () => {
    const c = cubic(MSS, 4 * MSS);
    c.setCwnd(100 * MSS);
    c.onLoss(100 * MSS, 0);
    const rtt = 100;
    const k = Math.cbrt((100 * 0.3) / 0.4) * 1000; // ≈ 4217 ms
    let now = runRtts(c, 0, Math.floor(k / rtt / 2), rtt);
    const halfway = c.cwnd / MSS;
    // Concave: most of the way back after half of K.
    expect(halfway).toBeGreaterThan(85);
    expect(halfway).toBeLessThan(100);
    now = runRtts(c, now, Math.ceil(k / rtt) - Math.floor(k / rtt / 2), rtt);
    expect(c.cwnd / MSS).toBeGreaterThanOrEqual(99);
    expect(c.cwnd / MSS).toBeLessThanOrEqual(102);
    runRtts(c, now, 40, rtt);
    // Convex: past W_max it accelerates (W(K + 4 s) = 0.4·4³ + 100 ≈ 126).
    expect(c.cwnd / MSS).toBeGreaterThan(120);
  });

  it('CUBIC grows at least as an AIMD flow with α = 3(1 − β)/(1 + β) would (the Reno-friendly region, RFC 9438 §4.3)', () => {
    const c = cubic(MSS, 4 * MSS);
    c.setCwnd(10 * MSS);
    c.onLoss(10 * MSS, 0);
    // RTTs of 1 ms: the cubic curve alone would still sit near 7 segments after 30 of them
    // (K ≈ 1.96 s); W_est adds α ≈ 0.53 segment per RTT: 7 + 30·0.53 ≈ 22.9.
    runRtts(c, 0, 30, 1);
    expect(c.cwnd / MSS).toBeGreaterThan(21);
    expect(c.cwnd / MSS).toBeLessThan(24);
  });
});
