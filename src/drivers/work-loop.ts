/**
 * A driver's one worker. `kick()` runs `step` until it reports nothing is due, never two at once:
 * a kick while it runs makes it look again. Results are handled inside `handle()`, where kicks
 * wait until the handler is done — a handler hands frames to the stack, which may transmit (and
 * kick) at once, and no batch may be built from a half-updated model of the chip.
 */
export class WorkLoop {
  private running = false;
  private again = false;
  private handling = false;

  constructor(
    private readonly step: () => Promise<boolean>,
    private readonly onError: (error: unknown) => void,
  ) {}

  kick(): void {
    if (this.handling) return; // handle()'s caller kicks when the handler is done
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void this.run();
  }

  /** Run a result handler; an exception in it is the driver's error, not the caller's. */
  handle(handler: () => void): void {
    this.handling = true;
    try {
      handler();
    } catch (error) {
      this.onError(error);
    } finally {
      this.handling = false;
    }
  }

  private async run(): Promise<void> {
    try {
      for (;;) {
        this.again = false;
        let didWork: boolean;
        try {
          didWork = await this.step();
        } catch (error) {
          this.onError(error);
          didWork = false;
        }
        if (!didWork && !this.again) return;
      }
    } finally {
      // Cleared in the same turn the loop ends: a kick() in any later microtask starts it again.
      this.running = false;
    }
  }
}
