import type { RearmableTimer } from '../time/timer.js';

/**
 * The period of a driver's safety-net poll. The poll exists for what the interrupt line does not
 * say: a missed edge (ENC28J60: a flag raised while another holds INT low gives no new edge, and
 * PKTIF is unreliable, errata #6; W5500: missed INTn edges, docs/w5500.md) and a chip reset
 * underneath, which silently turns interrupts off. Over the serial bridge each poll is an SPI
 * batch and a program run, a round trip through the board: ten a second were most of what an idle
 * host spends.
 *
 * So the poll runs every `baseMs` while frames move, and while the interrupt line has not yet
 * proved itself; once it has (seen asserted — over the serial bridge every board frame carries its
 * level — or a frame came while no poll was out: the line is wired and works), each poll that
 * follows a quiet period doubles the period, up to `idleMs`. A frame in either direction — among
 * them one a poll found after a missed edge — brings it back to `baseMs` at once.
 */
export class SafetyNetPoll {
  private periodMs: number;
  private traffic = false;
  private interruptWorks = false;
  private pollRunsOut = 0;

  constructor(
    private readonly timer: RearmableTimer,
    private readonly baseMs: number,
    private readonly idleMs: number,
  ) {
    this.periodMs = baseMs;
  }

  /** Current period (ms). */
  get period(): number {
    return this.periodMs;
  }

  /** Arm for the first poll (start, or after the line was lost). */
  start(): void {
    this.periodMs = this.baseMs;
    this.traffic = false;
    this.timer.arm(this.periodMs);
  }

  /**
   * A poll is being taken: arm the next one, `baseMs` after traffic, longer after a quiet period.
   * `mayBackOff`: the driver's receive path is one the interrupt line drives (the receive program
   * armed, the line wired).
   */
  rearm(mayBackOff: boolean): void {
    const quiet = mayBackOff && !this.traffic && this.interruptWorks;
    this.periodMs = quiet ? Math.min(this.periodMs * 2, Math.max(this.idleMs, this.baseMs)) : this.baseMs;
    this.traffic = false;
    this.timer.arm(this.periodMs);
  }

  /** The interrupt line was seen asserted, or delivered a frame no poll asked for: it is wired. */
  interruptSeen(): void {
    this.interruptWorks = true;
  }

  /** A poll asked the board to run the receive program once: a frame it brings may be a missed edge's. */
  pollRunStarted(run: Promise<unknown>): void {
    this.pollRunsOut++;
    const done = () => void this.pollRunsOut--;
    run.then(done, done);
  }

  /** A frame was received: by the interrupt line when no poll's run was out. */
  frameReceived(): void {
    if (this.pollRunsOut === 0) this.interruptWorks = true;
    this.frameMoved();
  }

  /** A frame went out or came in: poll every `baseMs` again, starting now. */
  frameMoved(): void {
    this.traffic = true;
    if (this.periodMs > this.baseMs) this.snapBack();
  }

  private snapBack(): void {
    this.periodMs = this.baseMs;
    const remaining = this.timer.remaining();
    if (remaining !== undefined && remaining > this.baseMs) this.timer.arm(this.baseMs);
  }
}
