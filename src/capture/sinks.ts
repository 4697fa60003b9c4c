import type { CaptureSink, CapturedFrame } from './capture.js';
import { decodeFrame } from './decode.js';
import type { FramePredicate } from './filter.js';
import { openPcapngFile } from './file-sink.js';
import { PcapngWriter, type ByteSink } from './pcapng.js';
import { JsonLinesSink, TextLogSink, type LineWriter } from './text-log.js';

/** The CLI's `--log text|json|none` and `--pcap FILE`, turned into sinks for a CaptureNic. */
export interface CaptureOptions {
  readonly log?: 'text' | 'json' | 'none';
  /** Where log lines go (the CLI passes a stderr writer). */
  readonly writeLine?: LineWriter;
  readonly pcapPath?: string;
  /** The pcapng stream to this sink instead of a file (the CLI's `--pcap -`: stdout). */
  readonly pcapSink?: ByteSink;
}

export function createCaptureSinks(options: CaptureOptions): CaptureSink[] {
  const sinks: CaptureSink[] = [];
  const writeLine = options.writeLine ?? ((line: string) => process.stderr.write(line + '\n'));
  if (options.log === 'text') sinks.push(new TextLogSink(writeLine));
  else if (options.log === 'json') sinks.push(new JsonLinesSink(writeLine));
  if (options.pcapPath) sinks.push(openPcapngFile(options.pcapPath));
  else if (options.pcapSink) sinks.push(new PcapngWriter(options.pcapSink));
  return sinks;
}

/**
 * Frames through a filter (filter.ts) to the sinks behind it, up to a count (`spinet log -c N`):
 * after the last one, `onLimit` runs once and further frames are ignored.
 */
export class FilterSink implements CaptureSink {
  /** Frames that matched and were passed on. */
  matched = 0;

  constructor(
    private readonly predicate: FramePredicate,
    private readonly sinks: readonly CaptureSink[],
    private readonly options: { readonly limit?: number; readonly onLimit?: () => void } = {},
  ) {}

  record(frame: CapturedFrame): void {
    const limit = this.options.limit ?? Infinity;
    if (this.matched >= limit || !this.predicate(decodeFrame(frame.bytes))) return;
    this.matched++;
    for (const sink of this.sinks) sink.record(frame);
    if (this.matched === limit) this.options.onLimit?.();
  }

  async flush(): Promise<void> {
    for (const sink of this.sinks) await sink.flush?.();
  }

  async close(): Promise<void> {
    for (const sink of this.sinks) await sink.close?.();
  }
}
