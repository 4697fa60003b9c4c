import type { CaptureSink } from './capture.js';
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
