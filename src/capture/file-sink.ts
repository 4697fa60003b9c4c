import { createWriteStream, type WriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
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

/**
 * A capture streamed to a pipe (`spinet log -w -`, an extcap's FIFO): bytes as they come. When
 * the reader goes away (EPIPE) writing stops and `onClosed` runs, so the capture can end.
 */
export class StreamSink implements ByteSink {
  private closed = false;

  constructor(
    private readonly stream: Writable,
    private readonly onClosed: (error?: Error) => void = () => undefined,
  ) {
    stream.on('error', (error) => this.end(error));
    stream.on('close', () => this.end());
  }

  write(bytes: Uint8Array): void {
    if (!this.closed) this.stream.write(bytes);
  }

  flush(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => this.stream.write('', () => resolve()));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
  }

  private end(error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.onClosed(error);
  }
}
