/**
 * Exceptions caught at a layer boundary. Whatever a handler above a boundary throws — a service, a
 * user's socket callback, a layer's own bug — stops there: the layer that caught it counts a drop
 * with its reason, and this registry reports the first exception of each site (its stack trace:
 * the bug to fix) and stays quiet about the rest, so a frame repeated a million times cannot
 * flood the log. Nothing reaches the NIC, the LAN or the driver, and nothing ends the process.
 */
export type ContainedErrorReport = (site: string, error: unknown) => void;

/** One line on stderr, with the stack trace: what a live stack does with a contained exception. */
export const reportToStderr: ContainedErrorReport = (site, error) => {
  const detail = error instanceof Error ? (error.stack ?? `${error.name}: ${error.message}`) : String(error);
  console.error(`spinet: an exception in ${site} was contained (further ones there are only counted): ${detail}`);
};

export class Containment {
  private readonly reported = new Set<string>();
  /** Exceptions caught, over every site. */
  total = 0;

  constructor(private readonly report: ContainedErrorReport = reportToStderr) {}

  /** An exception caught at `site` (e.g. 'udp socket callback'): reported the first time only. */
  caught(site: string, error: unknown): void {
    this.total++;
    if (this.reported.has(site)) return;
    this.reported.add(site);
    try {
      this.report(site, error);
    } catch {
      // A reporter that throws (a closed stderr) must not undo the containment.
    }
  }
}
