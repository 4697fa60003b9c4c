import type { CaptureSink, CapturedFrame } from './capture.js';
import { decodeFrame, formatHex, formatLayers, formatSummary, frameLayers } from './decode.js';

/** Where log sinks put their lines: stderr, a file stream, an array in a test. */
export type LineWriter = (line: string) => void;

/** `HH:MM:SS.uuuuuu` in UTC, as tcpdump prints with -tttt's time part. */
export function formatCaptureTime(timestampMs: number): string {
  const date = new Date(Math.floor(timestampMs));
  const micros = Math.floor((timestampMs - Math.floor(timestampMs / 1000) * 1000) * 1000);
  const hh = String(date.getUTCHours()).padStart(2, '0');
  const mm = String(date.getUTCMinutes()).padStart(2, '0');
  const ss = String(date.getUTCSeconds()).padStart(2, '0');
  return `${hh}:${mm}:${ss}.${String(micros).padStart(6, '0')}`;
}

/** What a text log adds under each frame's line (`spinet log -v`, `-x`). */
export interface TextLogOptions {
  /** Every layer's fields, one layer a line. */
  readonly verbose?: boolean;
  /** The frame's bytes in hex, as tcpdump -x. */
  readonly hex?: boolean;
}

/** `--log text`: one decoded line per frame, e.g. `09:14:27.000123 enc0 out 02:…, ARP, Request who-has …`. */
export class TextLogSink implements CaptureSink {
  constructor(
    private readonly write: LineWriter,
    private readonly options: TextLogOptions = {},
  ) {}

  record(frame: CapturedFrame): void {
    const summary = decodeFrame(frame.bytes);
    this.write(`${formatCaptureTime(frame.timestampMs)} ${frame.interfaceName} ${frame.direction} ${formatSummary(summary)}`);
    if (this.options.verbose) this.write(formatLayers(frameLayers(summary)));
    if (this.options.hex) this.write(formatHex(frame.bytes));
  }
}

/** `--log json`: one JSON object per frame: time, interface, direction, the decoded summary. */
export class JsonLinesSink implements CaptureSink {
  constructor(
    private readonly write: LineWriter,
    private readonly options: { includeBytes?: boolean } = {},
  ) {}

  record(frame: CapturedFrame): void {
    const entry = {
      time: new Date(Math.floor(frame.timestampMs)).toISOString(),
      timestampMs: frame.timestampMs,
      interface: frame.interfaceName,
      direction: frame.direction,
      ...decodeFrame(frame.bytes),
      ...(this.options.includeBytes ? { bytes: Buffer.from(frame.bytes.buffer, frame.bytes.byteOffset, frame.bytes.length).toString('hex') } : {}),
    };
    this.write(JSON.stringify(entry));
  }
}
