import type { MacAddress } from '../wire/address.js';
import type { Nic, NicHandlers, NicStats } from './nic.js';

/**
 * A Nic in front of another Nic (capture, impairment, fault injection): it takes over the inner
 * NIC's handlers and passes everything through; a subclass overrides what it changes —
 * `transmit`, `onReceive`, `stop` — and calls the pass-through where it wants the default.
 */
export abstract class NicWrapper implements Nic {
  protected handlers: NicHandlers | undefined;

  constructor(readonly inner: Nic) {
    inner.attach({
      receive: (frame) => this.onReceive(frame),
      linkChange: (up) => this.handlers?.linkChange(up),
    });
  }

  /** A frame from the inner NIC; by default handed straight up. */
  protected onReceive(frame: Uint8Array): void {
    this.handlers?.receive(frame);
  }

  get name(): string {
    return this.inner.name;
  }
  get mac(): MacAddress {
    return this.inner.mac;
  }
  get mtu(): number {
    return this.inner.mtu;
  }
  get capabilities(): Nic['capabilities'] {
    return this.inner.capabilities;
  }
  get linkUp(): boolean {
    return this.inner.linkUp;
  }

  attach(handlers: NicHandlers): void {
    this.handlers = handlers;
  }

  transmit(frame: Uint8Array): boolean {
    return this.inner.transmit(frame);
  }

  start(): Promise<void> {
    return this.inner.start();
  }

  stop(): Promise<void> {
    return this.inner.stop();
  }

  joinMulticast(mac: MacAddress): void {
    this.inner.joinMulticast?.(mac);
  }

  leaveMulticast(mac: MacAddress): void {
    this.inner.leaveMulticast?.(mac);
  }

  get setPromiscuous(): ((on: boolean) => void) | undefined {
    const inner = this.inner;
    return inner.setPromiscuous && ((on) => inner.setPromiscuous!(on));
  }

  stats(): NicStats {
    return this.inner.stats();
  }
}
