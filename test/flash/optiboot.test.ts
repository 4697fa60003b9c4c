import { describe, expect, it } from 'vitest';
import { OptibootEmulator, WATCHDOG_16MS, WATCHDOG_1S } from '../../boards/bootloader/optiboot.js';
import { VirtualClock } from '../../src/time/virtual-clock.js';

function boot() {
  const clock = new VirtualClock();
  const flash = new Uint16Array(0x4000).fill(0xffff);
  const sent: number[] = [];
  let applicationStarts = 0;
  const bootloader = new OptibootEmulator({
    flash,
    clock,
    transmit: (bytes) => sent.push(...bytes),
    startApplication: () => applicationStarts++,
  });
  bootloader.reset();
  const send = (...bytes: number[]) => {
    sent.length = 0;
    bootloader.receive(Uint8Array.from(bytes));
    return [...sent];
  };
  return { clock, flash, bootloader, send, starts: () => applicationStarts };
}

describe('optiboot emulation (STK500v1 as optiboot 4.4 answers it)', () => {
  it('answers GET_SYNC, the signature and the version like a real Uno', () => {
    const { send } = boot();
    expect(send(0x30, 0x20)).toEqual([0x14, 0x10]);
    expect(send(0x75, 0x20)).toEqual([0x14, 0x1e, 0x95, 0x0f, 0x10]);
    expect(send(0x41, 0x81, 0x20)).toEqual([0x14, 4, 0x10]);
    expect(send(0x41, 0x82, 0x20)).toEqual([0x14, 4, 0x10]);
    expect(send(0x41, 0x98, 0x20)).toEqual([0x14, 3, 0x10]);
    expect(send(0x56, 0xac, 0x80, 0, 0, 0x20)).toEqual([0x14, 0x00, 0x10]);
    expect(send(0x42, ...new Array(20).fill(0), 0x20)).toEqual([0x14, 0x10]);
  });

  it('programs a page at the word address LOAD_ADDRESS gave and reads it back', () => {
    const { send, flash } = boot();
    const page = Array.from({ length: 128 }, (_, i) => i);
    expect(send(0x55, 0x40, 0x00, 0x20)).toEqual([0x14, 0x10]); // word 0x40 = byte 0x80
    expect(send(0x64, 0x00, 0x80, 0x46, ...page, 0x20)).toEqual([0x14, 0x10]);
    expect(flash[0x40]).toBe(0x0100);
    expect(flash[0x7f]).toBe(0x7f7e);
    expect(flash[0x3f]).toBe(0xffff);
    send(0x55, 0x40, 0x00, 0x20);
    expect(send(0x74, 0x00, 0x04, 0x46, 0x20)).toEqual([0x14, 0, 1, 2, 3, 0x10]);
  });

  it('leaves the boot section alone (lock bits), so verify catches an oversized sketch', () => {
    const { send, flash } = boot();
    send(0x55, 0x00, 0x3f, 0x20); // byte 0x7E00
    send(0x64, 0x00, 0x80, 0x46, ...new Array(128).fill(0), 0x20);
    expect(flash[0x3f00]).toBe(0xffff);
  });

  it('given silence, starts the application after the 1 s watchdog; every byte restarts it', () => {
    const { send, clock, bootloader, starts } = boot();
    clock.advance(WATCHDOG_1S - 1);
    send(0x30, 0x20);
    clock.advance(WATCHDOG_1S - 1);
    expect(starts()).toBe(0);
    clock.advance(1);
    expect(starts()).toBe(1);
    expect(bootloader.running).toBe(false);
  });

  it('on LEAVE_PROGMODE, starts the application 16 ms later', () => {
    const { send, clock, starts } = boot();
    expect(send(0x51, 0x20)).toEqual([0x14, 0x10]);
    clock.advance(WATCHDOG_16MS);
    expect(starts()).toBe(1);
  });

  it('when a command lacks CRC_EOP, hangs silently and the 16 ms watchdog starts the application', () => {
    const { send, clock, starts } = boot();
    expect(send(0x30, 0x00, 0x30, 0x20)).toEqual([]);
    clock.advance(WATCHDOG_16MS);
    expect(starts()).toBe(1);
  });
});
