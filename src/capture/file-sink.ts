import { createWriteStream, type WriteStream } from 'node:fs';
import { PcapngWriter, type ByteSink } from './pcapng.js';
import type { LineWriter } from './text-log.js';

/**
 * A capture file: bytes (pcapng) or lines (text, JSON) appended to a file through a write stream.
 * `flush` resolves once everything written so far has reached the OS; `close` ends the file.
 */
export class FileSink implements ByteSink {
  private readonly stream: WriteStream;
  private failure: Error | undefined;
  private closing: Promise<void> | undefined;

  constructor(readonly path: string) {
    this.stream = createWriteStream(path);
    this.stream.on('error', (error) => (this.failure = error));
  }

  write(bytes: Uint8Array): void {
    if (this.closing || this.failure) return;
    this.stream.write(bytes);
  }

  /** A LineWriter for TextLogSink / JsonLinesSink. */
  readonly writeLine: LineWriter = (line) => {
    if (this.closing || this.failure) return;
    this.stream.write(line + '\n');
  };

  flush(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closing) return this.closing;
    // An empty write's callback runs after every earlier write has been handed to the OS.
    return new Promise((resolve, reject) => this.stream.write('', (error) => (error ? reject(error) : resolve())));
  }

  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve, reject) => {
      this.stream.end(() => (this.failure ? reject(this.failure) : resolve()));
    });
    return this.closing;
  }
}

/** Open `path` as a pcapng capture; closing the writer closes the file. */
export function openPcapngFile(path: string, options: { application?: string } = {}): PcapngWriter {
  return new PcapngWriter(new FileSink(path), options);
}
